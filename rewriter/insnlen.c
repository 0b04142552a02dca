/* rewriter/insnlen.c - the length of one x86-64 instruction, from its
 * prefixes, opcode and ModRM/SIB bytes alone.
 *
 * Why not capstone here: the linear sweep needs only lengths, and
 * capstone 4 formats every instruction's text as it decodes (a few MB/s,
 * against govrewrite's 20 MB/s target) and does not know some AVX-512
 * instructions glibc uses (kmovq), which would leave the rest of a function
 * with unknown boundaries. Capstone still decodes every instruction the
 * engine moves or reads a syscall number from, and tests/t_rewrite_engine.c
 * checks this table against capstone on whole libraries.
 *
 * Not here: what an instruction does (engine.c classifies branches and
 * syscalls from the bytes). */
#include "engine.h"

/* One-byte opcodes: bit 0 has ModRM; bits 1-3: immediate kind. */
enum { M = 1, I8 = 2, IZ = 4, I16 = 6, I16_8 = 8, MOFFS = 10, IV = 12, BAD = 14, PFX = 16 };

static const uint8_t one[256] = {
	/* 00 */ M, M, M, M, I8, IZ, BAD, BAD, M, M, M, M, I8, IZ, BAD, 0,
	/* 10 */ M, M, M, M, I8, IZ, BAD, BAD, M, M, M, M, I8, IZ, BAD, BAD,
	/* 20 */ M, M, M, M, I8, IZ, PFX, BAD, M, M, M, M, I8, IZ, PFX, BAD,
	/* 30 */ M, M, M, M, I8, IZ, PFX, BAD, M, M, M, M, I8, IZ, PFX, BAD,
	/* 40 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 50 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/* 60 */ BAD, BAD, BAD, M, PFX, PFX, PFX, PFX, IZ, M | IZ, I8, M | I8, 0, 0, 0, 0,
	/* 70 */ I8, I8, I8, I8, I8, I8, I8, I8, I8, I8, I8, I8, I8, I8, I8, I8,
	/* 80 */ M | I8, M | IZ, BAD, M | I8, M, M, M, M, M, M, M, M, M, M, M, M,
	/* 90 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, BAD, 0, 0, 0, 0, 0,
	/* a0 */ MOFFS, MOFFS, MOFFS, MOFFS, 0, 0, 0, 0, I8, IZ, 0, 0, 0, 0, 0, 0,
	/* b0 */ I8, I8, I8, I8, I8, I8, I8, I8, IV, IV, IV, IV, IV, IV, IV, IV,
	/* c0 */ M | I8, M | I8, I16, 0, BAD, BAD, M | I8, M | IZ, I16_8, 0, I16, 0, 0, I8, BAD, 0,
	/* d0 */ M, M, M, M, BAD, BAD, BAD, 0, M, M, M, M, M, M, M, M,
	/* e0 */ I8, I8, I8, I8, I8, I8, I8, I8, IZ, IZ, BAD, I8, 0, 0, 0, 0,
	/* f0 */ PFX, 0, PFX, PFX, 0, 0, M, M, 0, 0, 0, 0, 0, 0, M, M,
};

/* Two-byte opcodes (0f xx) without ModRM. */
static int twobyte_no_modrm(uint8_t op)
{
	return (op >= 0x05 && op <= 0x09) || op == 0x0b || op == 0x0e || (op >= 0x30 && op <= 0x37) ||
	       op == 0x77 || (op >= 0x80 && op <= 0x8f) || op == 0xa0 || op == 0xa1 ||
	       op == 0xa2 || op == 0xa8 || op == 0xa9 || op == 0xaa || (op >= 0xc8 && op <= 0xcf);
}

/* Map 1 (0f xx, VEX/EVEX map 1) opcodes with an imm8 after ModRM. */
static int map1_imm8(uint8_t op)
{
	return (op >= 0x70 && op <= 0x73) || op == 0xa4 || op == 0xac || op == 0xba ||
	       op == 0xc2 || op == 0xc4 || op == 0xc5 || op == 0xc6;
}

/* Bytes of ModRM, SIB and displacement at p; -1 past max. */
static int modrm_len(const uint8_t *p, size_t max)
{
	if (max < 1)
		return -1;
	int mod = p[0] >> 6, rm = p[0] & 7, n = 1;
	if (mod == 3)
		return 1;
	if (rm == 4) {
		if (max < 2)
			return -1;
		n++;
		if (mod == 0 && (p[1] & 7) == 5)
			n += 4;
	} else if (mod == 0 && rm == 5) {
		n += 4;
	}
	if (mod == 1)
		n += 1;
	else if (mod == 2)
		n += 4;
	return n;
}

/* A VEX (c4/c5) or EVEX (62) instruction at p (the prefix byte); *modrm
 * gets the offset of its ModRM byte, or -1. */
static int vex_len(const uint8_t *p, size_t max, int *modrm)
{
	size_t pre = p[0] == 0xc5 ? 2 : p[0] == 0xc4 ? 3 : 4;
	if (max < pre + 2)
		return -1;
	int map = p[0] == 0xc5 ? 1 : p[0] == 0xc4 ? (p[1] & 0x1f) : (p[1] & 0x07);
	uint8_t op = p[pre];
	if (map < 1 || map > 6 || map == 4)
		return -1;
	if (map == 1 && op == 0x77 && p[0] != 0x62)
		return (int)pre + 1; /* vzeroupper, vzeroall */
	*modrm = (int)pre + 1;
	int m = modrm_len(p + pre + 1, max - pre - 1);
	if (m < 0)
		return -1;
	int imm = map == 3 || (map == 1 && map1_imm8(op));
	return (int)pre + 1 + m + imm;
}

int gre_insn_length(const uint8_t *p, size_t max)
{
	int modrm;
	return gre_insn_decode(p, max, &modrm);
}

int gre_insn_decode(const uint8_t *p, size_t max, int *modrm_at)
{
	size_t i = 0;
	*modrm_at = -1;
	int opsize = 0, addr32 = 0, rexw = 0;
	if (max > 15)
		max = 15;
	for (; i < max && (one[p[i]] == PFX); i++) {
		opsize |= p[i] == 0x66;
		addr32 |= p[i] == 0x67;
	}
	if (i < max && (p[i] & 0xf0) == 0x40) {
		rexw = (p[i] & 8) != 0;
		i++;
	}
	if (i >= max)
		return -1;
	uint8_t op = p[i];
	if (op == 0xc4 || op == 0xc5 || op == 0x62) {
		int vm = -1, n = vex_len(p + i, max - i, &vm);
		if (vm >= 0)
			*modrm_at = (int)i + vm;
		return n < 0 || i + (size_t)n > max ? -1 : (int)i + n;
	}
	size_t n = i + 1;
	int kind, modrm;
	if (op == 0x0f) {
		if (n >= max)
			return -1;
		uint8_t op2 = p[n++];
		if (op2 == 0x38 || op2 == 0x3a) {
			if (n >= max)
				return -1;
			n++;
			modrm = 1;
			kind = op2 == 0x3a ? I8 : 0;
		} else if (op2 == 0x0f) {
			modrm = 1;
			kind = I8; /* 3DNow!: the opcode follows ModRM */
		} else {
			modrm = !twobyte_no_modrm(op2);
			kind = (op2 >= 0x80 && op2 <= 0x8f) ? IZ : map1_imm8(op2) ? I8 : 0;
			if (op2 == 0x0b || op2 == 0x05 || op2 == 0x07)
				kind = 0;
		}
	} else {
		uint8_t t = one[op];
		if (t == BAD)
			return -1;
		modrm = t & M;
		kind = t & ~M;
		if ((op == 0xf6 || op == 0xf7) && n < max && ((p[n] >> 3) & 7) < 2)
			kind = op == 0xf6 ? I8 : IZ; /* test r/m, imm */
	}
	if (modrm) {
		*modrm_at = (int)n;
		int m = modrm_len(p + n, max - n);
		if (m < 0)
			return -1;
		n += (size_t)m;
	}
	switch (kind) {
	case I8: n += 1; break;
	case IZ: n += opsize && !rexw && !(op == 0xe8 || op == 0xe9 || op == 0x0f) ? 2 : 4; break;
	case I16: n += 2; break;
	case I16_8: n += 3; break;
	case MOFFS: n += addr32 ? 4 : 8; break;
	case IV: n += rexw ? 8 : opsize ? 2 : 4; break;
	default: break;
	}
	return n > max ? -1 : (int)n;
}
