#!/usr/bin/env python3
"""Regenerates include/gov/libc.def, the table of glibc's syscall wrappers.

One line per exported glibc function that wraps an x86-64 Linux syscall:
    GOV_LIBC_ENTRY(name, syscall_name, types, ret_conv, flags)
The output is committed, like include/gov/syscalls.def, so that builds do not
depend on the installed glibc; rerun this script (Python 3 standard library,
plus gcc and binutils' readelf/objdump) when glibc or syscalls.def changes:
    scripts/gen-libc.py [--libc /lib/x86_64-linux-gnu/libc.so.6] [-o include/gov/libc.def]
The report (entries, syscalls left without a wrapper, notes) goes to stderr.
Same inputs give a byte-identical output.

How each column is obtained
---------------------------
Which functions.  Every syscall name of include/gov/syscalls.def that glibc
  declares (in the HEADERS below, with _GNU_SOURCE) and exports from
  libc.so.6 with a default symbol version is taken as its own wrapper, except
  the NOT_WRAPPERS (same name, other purpose: syslog(3), exit(3)). To those
  are added the wrappers of SYSCALL_OF (renames, aliases, 64-bit variants,
  functions such as sigaction or waitpid). UNDECLARED adds the seven wrappers
  glibc exports but declares in no header (capget, init_module, ...).

syscall_name.  Curated, and verified.  A function is assumed to make the
  syscall of its own name unless SYSCALL_OF says otherwise; that table lists
  every case where glibc 2.36 on x86-64 calls another syscall (open -> openat,
  stat/fstat/lstat -> newfstatat, pipe -> pipe2, select -> pselect6,
  nanosleep -> clock_nanosleep, getrlimit -> prlimit64, ...).  The claim is
  then checked against the machine code: libc.so.6 is disassembled (objdump
  -d), each function's extent is its dynamic symbol size or its .eh_frame FDE,
  the syscall number in %eax at each `syscall` instruction is found by
  tracking constants through registers in program order, and direct
  calls/jumps (and, for IFUNC resolvers, the addresses they load) are
  followed three levels deep (so the fallback of a vDSO function, e.g. time's,
  is found).  If the recorded syscall is not among the ones a function
  reaches, the generator fails and prints what it does reach (that is how
  pipe -> pipe2, settimeofday -> clock_settime or utime -> utimensat were
  found).  The check proves the recorded syscall is made by the wrapper;
  when a wrapper can make several (a fallback on old kernels, a second path),
  which one to record is the curated judgement, and the entry's comment
  names the others.  --explain prints, per entry, the syscalls of the
  function's own code and of everything it reaches; --no-verify skips the
  check (no binutils needed).  The probe program below also checks that each
  name binds to the symbol of the same name (no asm-label redirection under
  _GNU_SOURCE).  Functions deliberately left out are in LEFT_OUT.

types.  From the real declarations, never a hand-written list (except the
  seven UNDECLARED ones).  A C file including HEADERS is compiled with
  `gcc -aux-info`, which prints every declared function as one normalised
  prototype line (parameter names, attributes and restrict removed, typedef
  names kept); those lines are split into return and parameter types.  Each
  distinct type is then classified by gcc itself: a probe program prints
  __builtin_classify_type, sizeof, signedness (_Generic) and
  __builtin_types_compatible_p against const char *, char *, const void *,
  void * for it.  (gcc 12 promotes an enum before classifying it, so enums
  are recognised by name: `enum tag`, or a typedef of one found in the
  preprocessed headers.)  Codes (gov/types.def):
    void return 'v'; any pointer return 'p';
    integers and enums up to 32 bits: signed 'i' (enums are 'i' whatever
      their underlying type), unsigned 'u' (so uid_t, mode_t, socklen_t: 'u');
    64-bit integers: signed 'l' (long, ssize_t, off_t, time_t), unsigned 'L'
      (unsigned long, uint64_t, dev_t, rlim_t), except a type written size_t: 'z';
    double 'd', float 'f';
    const char * or const void * followed by a size_t: 'b' (then 'z');
    void * or char * followed by a size_t: 'o' (then 'z');
    any other const char *: 's' (a C string);
    any other pointer, and the transparent unions __SOCKADDR_ARG and
      __CONST_SOCKADDR_ARG of <sys/socket.h>: 'p';
    union sigval (sigqueue, pthread_sigqueue), an int or a pointer passed
      by value in one register: 'L'.
  NOT_BUFFER lists functions whose pointer+size pairs are not byte buffers
  (address ranges such as mmap/munmap/mlock, and msgsnd/msgrcv whose size
  excludes the mtype field); their pointers are 'p' so that govrt does not
  copy the range.
  Variadic functions get their fixed parameters from the declaration and
  their documented extra arguments from VARIADIC_EXTRA: integers as 'L' (a
  whole 64-bit word: what the caller passes in the register), pointers as 'p';
  flags GOV_LIBC_VARIADIC.  syscall(2) itself is left out: it wraps no one
  syscall (the plugin must treat it as a raw syscall site).

ret_conv.  Curated: GOV_RET_LIBC (-1 or NULL, and errno) unless listed in
  ERRNUM (returns the error number, errno untouched: posix_fadvise,
  clock_nanosleep, pthread_*, sigwait, ...) or in MAP_FAILED (returns the
  pointer (void *)-1 and sets errno: mmap, mremap, shmat, sbrk, signal).
  The ERRNUM claim is verified too: such a function must not store to errno
  (a %fs-relative store) in its own code.
"""
import argparse
import bisect
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
GOV_MAX_ARGS = 6

# The glibc headers that declare syscall wrappers.
HEADERS = """
unistd.h fcntl.h stdio.h stdlib.h signal.h time.h sched.h poll.h utime.h dirent.h
mqueue.h grp.h pthread.h sys/stat.h sys/statfs.h sys/statvfs.h sys/mman.h
sys/socket.h sys/epoll.h sys/eventfd.h sys/signalfd.h sys/timerfd.h
sys/inotify.h sys/fanotify.h sys/file.h sys/ioctl.h sys/uio.h sys/sendfile.h
sys/xattr.h sys/mount.h sys/swap.h sys/reboot.h sys/klog.h sys/io.h
sys/fsuid.h sys/personality.h sys/prctl.h sys/ptrace.h sys/resource.h
sys/time.h sys/timex.h sys/times.h sys/utsname.h sys/sysinfo.h sys/wait.h
sys/select.h sys/ipc.h sys/shm.h sys/sem.h sys/msg.h sys/quota.h
sys/random.h sys/pidfd.h sys/acct.h
""".split()

# Exported with a default version but declared by no glibc header: their
# prototypes (from the man pages, opaque pointer typedefs as void *) are the
# only hand-written ones. They go through the same parser and classifier.
UNDECLARED = """
int capget(void *hdrp, void *datap);
int capset(void *hdrp, void *datap);
int modify_ldt(int func, void *ptr, unsigned long bytecount);
int pivot_root(const char *new_root, const char *put_old);
int arch_prctl(int code, unsigned long addr);
int init_module(void *module_image, unsigned long len, const char *param_values);
int delete_module(const char *name, unsigned int flags);
"""

# Same name as a syscall, different purpose.
NOT_WRAPPERS = {
    'syslog': 'syslog(3) is the logging API; klogctl() wraps syslog(2)',
    'exit': 'exit(3) runs atexit handlers; _exit() wraps exit_group',
}

# wrapper -> (the syscall it makes on x86-64 with glibc 2.36, note). Every
# case where that syscall is not the one named like the wrapper. A note says
# what else the wrapper may do (fallbacks, other syscalls).
SYSCALL_OF = {
    # files
    'open': ('openat', ''), 'open64': ('openat', ''), 'openat64': ('openat', ''),
    'creat64': ('creat', ''),
    'stat': ('newfstatat', ''), 'stat64': ('newfstatat', ''),
    'lstat': ('newfstatat', ''), 'lstat64': ('newfstatat', ''),
    'fstat': ('newfstatat', 'fstatat(fd, "", buf, AT_EMPTY_PATH)'),
    'fstat64': ('newfstatat', 'fstatat(fd, "", buf, AT_EMPTY_PATH)'),
    'fstatat': ('newfstatat', ''), 'fstatat64': ('newfstatat', ''),
    'statfs64': ('statfs', ''), 'fstatfs64': ('fstatfs', ''),
    'statvfs': ('statfs', ''), 'statvfs64': ('statfs', ''),
    'fstatvfs': ('fstatfs', ''), 'fstatvfs64': ('fstatfs', ''),
    'pread': ('pread64', ''), 'pwrite': ('pwrite64', ''),
    'preadv64': ('preadv', ''), 'pwritev64': ('pwritev', ''),
    'preadv64v2': ('preadv2', 'falls back to preadv'),
    'pwritev64v2': ('pwritev2', 'falls back to pwritev'),
    'lseek64': ('lseek', ''), 'truncate64': ('truncate', ''),
    'ftruncate64': ('ftruncate', ''), 'sendfile64': ('sendfile', ''),
    'fallocate64': ('fallocate', ''),
    'posix_fallocate': ('fallocate', 'emulated by writes if unsupported'),
    'posix_fallocate64': ('fallocate', 'emulated by writes if unsupported'),
    'posix_fadvise': ('fadvise64', ''), 'posix_fadvise64': ('fadvise64', ''),
    'fcntl64': ('fcntl', ''),
    'mknod': ('mknodat', ''), 'mkfifo': ('mknodat', ''), 'mkfifoat': ('mknodat', ''),
    'utime': ('utimensat', ''), 'utimes': ('utimensat', ''),
    'futimesat': ('utimensat', ''), 'futimens': ('utimensat', ''),
    'futimes': ('utimensat', ''), 'lutimes': ('utimensat', ''),
    'remove': ('unlink', 'rmdir if the path is a directory'),
    'umount': ('umount2', ''),
    # memory
    'mmap64': ('mmap', ''), 'posix_madvise': ('madvise', ''),
    'sbrk': ('brk', ''),
    # processes
    'fork': ('clone', 'also runs atfork handlers; futex, set_robust_list'),
    '_Fork': ('clone', 'also set_robust_list'),
    '_exit': ('exit_group', 'then exit if exit_group returns'),
    '_Exit': ('exit_group', 'then exit if exit_group returns'),
    'execv': ('execve', ''),
    'execvp': ('execve', 'PATH search: one execve per candidate'),
    'execvpe': ('execve', 'PATH search: one execve per candidate'),
    'fexecve': ('execveat', 'falls back to execve of /proc/self/fd/N'),
    'wait': ('wait4', ''), 'waitpid': ('wait4', ''), 'wait3': ('wait4', ''),
    'getrlimit': ('prlimit64', ''), 'getrlimit64': ('prlimit64', ''),
    'setrlimit': ('prlimit64', ''), 'setrlimit64': ('prlimit64', ''),
    'prlimit': ('prlimit64', ''),
    'setpgrp': ('setpgid', ''),
    'seteuid': ('setresuid', ''), 'setegid': ('setresgid', ''),
    'sched_getcpu': ('getcpu', 'vDSO; the syscall only as a fallback'),
    'pthread_setaffinity_np': ('sched_setaffinity', ''),
    'pthread_getaffinity_np': ('sched_getaffinity', ''),
    'pthread_setschedparam': ('sched_setscheduler', ''),
    'pthread_setschedprio': ('sched_setparam', ''),
    # signals
    'sigaction': ('rt_sigaction', ''), 'signal': ('rt_sigaction', ''),
    'sysv_signal': ('rt_sigaction', ''),
    'sigprocmask': ('rt_sigprocmask', ''), 'pthread_sigmask': ('rt_sigprocmask', ''),
    'sigpending': ('rt_sigpending', ''), 'sigsuspend': ('rt_sigsuspend', ''),
    'sigtimedwait': ('rt_sigtimedwait', ''), 'sigwaitinfo': ('rt_sigtimedwait', ''),
    'sigwait': ('rt_sigtimedwait', ''),
    'sigqueue': ('rt_sigqueueinfo', ''), 'pthread_sigqueue': ('rt_tgsigqueueinfo', ''),
    'raise': ('tgkill', 'also gettid and rt_sigprocmask'),
    'pthread_kill': ('tgkill', 'also rt_sigprocmask; gettid for the calling thread'),
    'killpg': ('kill', ''),
    'signalfd': ('signalfd4', ''), 'eventfd': ('eventfd2', ''),
    'eventfd_read': ('read', ''), 'eventfd_write': ('write', ''),
    # time
    'nanosleep': ('clock_nanosleep', ''),
    'settimeofday': ('clock_settime', 'settimeofday only when tv is NULL and tz is not'),
    'adjtimex': ('clock_adjtime', ''), 'ntp_adjtime': ('clock_adjtime', ''),
    'adjtime': ('clock_adjtime', ''),
    # I/O multiplexing, IPC, sockets
    'select': ('pselect6', ''), 'pselect': ('pselect6', ''),
    'pipe': ('pipe2', ''),
    'semop': ('semtimedop', ''),
    'mq_send': ('mq_timedsend', ''), 'mq_receive': ('mq_timedreceive', ''),
    'mq_getattr': ('mq_getsetattr', ''), 'mq_setattr': ('mq_getsetattr', ''),
    'mq_close': ('close', ''),
    'send': ('sendto', ''), 'recv': ('recvfrom', ''),
    'faccessat': ('faccessat2', 'falls back to faccessat on ENOSYS'),
    # misc
    'klogctl': ('syslog', ''),
    'getentropy': ('getrandom', ''),
}

# Notes for wrappers that keep their own name's syscall but do more.
NOTES = {
    'mlock2': 'falls back to mlock when flags is 0',
    'clock_gettime': 'vDSO; the syscall only as a fallback',
    'clock_getres': 'vDSO; the syscall only as a fallback',
    'getcpu': 'vDSO; the syscall only as a fallback',
    'time': 'vDSO (IFUNC); the syscall only as a fallback',
    'gettimeofday': 'vDSO (IFUNC); the syscall only as a fallback',
    'clone': 'extra arguments (parent_tid, tls, child_tid) not recorded: GOV_MAX_ARGS',
}

# Documented extra arguments of variadic wrappers: integers 'L', pointers 'p'.
VARIADIC_EXTRA = {
    'open': 'L', 'open64': 'L', 'openat': 'L', 'openat64': 'L',  # mode_t mode
    'fcntl': 'L', 'fcntl64': 'L',                  # int or pointer arg
    'ioctl': 'p',                                  # char *argp
    'prctl': 'LLLL',                               # unsigned long arg2..arg5
    'ptrace': 'Lpp',                               # pid_t pid, void *addr, void *data
    'mremap': 'p',                                 # void *new_address
    'semctl': 'L',                                 # union semun, one word
    'mq_open': 'Lp',                               # mode_t mode, struct mq_attr *attr
    'clone': '',     # pid_t *parent_tid, void *tls, pid_t *child_tid: 7 > GOV_MAX_ARGS
}

# Wrappers deliberately left out (printed in the report).
LEFT_OUT = {
    'syscall': 'wraps any syscall: a raw syscall site, number in its first argument',
    'execl, execle, execlp': 'make execve, but argv is the variadic part',
    'sigpause': '_GNU_SOURCE redirects it to __xpg_sigpause; legacy',
    'sleep, usleep': 'make clock_nanosleep; sleep returns the time left, not -1/errno',
    'timespec_get': 'makes clock_gettime; returns 0 on error, no errno',
    'lockf, closefrom, lchmod, getdirentries': 'APIs built on fcntl, close_range, '
        'fchmodat, getdents64 with more logic than a wrapper',
}

# Return the error number instead of -1/errno.
ERRNUM = {
    'posix_fadvise', 'posix_fadvise64', 'posix_fallocate', 'posix_fallocate64',
    'posix_madvise', 'clock_nanosleep', 'sigwait', 'pthread_kill',
    'pthread_sigmask', 'pthread_sigqueue', 'pthread_setaffinity_np',
    'pthread_getaffinity_np', 'pthread_setschedparam', 'pthread_setschedprio',
}

# Return (void *)-1 (MAP_FAILED, SIG_ERR) and set errno.
MAP_FAILED = {'mmap', 'mmap64', 'mremap', 'shmat', 'sbrk', 'signal', 'sysv_signal'}

# Pointer+size pairs that are not byte buffers govrt could copy.
NOT_BUFFER = {
    'mmap', 'mmap64', 'munmap', 'mprotect', 'pkey_mprotect', 'madvise',
    'posix_madvise', 'msync', 'mlock', 'mlock2', 'munlock', 'mincore',
    'mremap', 'remap_file_pages',      # address ranges
    'msgsnd', 'msgrcv',                # size excludes the leading long mtype
}

# Unions passed by value, in one integer register.
UNIONS = {
    '__SOCKADDR_ARG': 'p', '__CONST_SOCKADDR_ARG': 'p',  # transparent unions of pointers
    'union sigval': 'L',                                 # int or void *
}


def die(msg):
    sys.exit('gen-libc.py: ' + msg)


def run(cmd, ok_codes=(0,)):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode not in ok_codes or (r.returncode and not r.stdout):
        die('%s failed:\n%s' % (' '.join(cmd), r.stderr))
    return r.stdout


def read_syscalls(path):
    nr = {}
    with open(path) as f:
        for line in f:
            m = re.match(r'GOV_SYSCALL_ENTRY\((\d+), (\w+)\)', line)
            if m:
                nr[m.group(2)] = int(m.group(1))
    if not nr:
        die('no GOV_SYSCALL_ENTRY in ' + path)
    return nr


def split_params(s):
    out, depth, cur = [], 0, ''
    for c in s:
        if c == '(':
            depth += 1
        elif c == ')':
            depth -= 1
        if c == ',' and depth == 0:
            out.append(cur.strip())
            cur = ''
        else:
            cur += c
    if cur.strip():
        out.append(cur.strip())
    return out


def declarations(tmp, cc):
    """name -> (return type, [parameter types], variadic), from gcc -aux-info."""
    src = os.path.join(tmp, 'decls.c')
    with open(src, 'w') as f:
        f.write('#define _GNU_SOURCE\n')
        f.writelines('#include <%s>\n' % h for h in HEADERS)
        f.write(UNDECLARED)
    aux = os.path.join(tmp, 'aux.txt')
    run([cc, '-std=gnu11', '-c', '-aux-info', aux, '-o', os.path.join(tmp, 'decls.o'), src])
    # Enums are promoted before gcc 12 can classify them; find them by name:
    # `enum tag`, or a typedef name standing for an enum (idtype_t, ...).
    pp = run([cc, '-std=gnu11', '-E', '-P', src])
    enums = set(m.group(2) for m in re.finditer(
        r'\btypedef\s+enum\b\s*\w*\s*(\{[^{}]*\})?\s*(\w+)\s*;', pp))
    aliases = re.findall(r'\btypedef\s+(\w+)\s+(\w+)\s*;', pp)
    grew = True
    while grew:
        new = {b for a, b in aliases if a in enums} - enums
        enums |= new
        grew = bool(new)
    decls = {}
    with open(aux) as f:
        for line in f:
            m = re.match(r'/\* (\S+):\d+:\w+ \*/ (?:extern )?(.*)$', line.rstrip('\n'))
            if not m or ' static ' in ' ' + m.group(2):
                continue
            d = re.match(r'(.*?)\b(\w+) \((.*)\);$', m.group(2))
            if not d or '(' in d.group(1):
                continue            # returns a function pointer: none we need
            ret, name, params = d.group(1).strip(), d.group(2), split_params(d.group(3))
            variadic = bool(params) and params[-1] == '...'
            if variadic:
                params = params[:-1]
            if params == ['void']:
                params = []
            decl = (ret, params, variadic)
            if name in decls and decls[name] != decl:
                die('%s declared twice, differently: %s / %s' % (name, decls[name], decl))
            decls[name] = decl
    return decls, enums


def classify(tmp, cc, types, names):
    """Ask gcc about each C type, and which symbol each name binds to."""
    src = os.path.join(tmp, 'probe.c')
    with open(src, 'w') as f:
        f.write('#define _GNU_SOURCE\n')
        f.writelines('#include <%s>\n' % h for h in HEADERS)
        f.write(UNDECLARED)
        f.write('#include <limits.h>\n#include <stdio.h>\n')
        f.write('#define SIGNED(x) _Generic((x), signed char: 1, short: 1, int: 1, long: 1, '
                'long long: 1, char: CHAR_MIN < 0, default: 0)\n')
        f.write('#define IS(T, U) __builtin_types_compatible_p(__typeof__(T), U)\n')
        f.write('#define P(T) printf("%d %zu %d %d %d %d %d\\n", '
                '__builtin_classify_type(*(__typeof__(T) *)0), sizeof(__typeof__(T)), '
                'SIGNED(*(__typeof__(T) *)0), IS(T, const char *), IS(T, char *), '
                'IS(T, const void *), IS(T, void *))\n')
        f.write('void *const gov_probe_refs[] = {\n')
        f.writelines('\t(void *)&%s,\n' % n for n in names)
        f.write('};\nint main(void)\n{\n')
        f.writelines('\tP(%s);\n' % t for t in types)
        f.write('\tprintf("%d %d\\n", __GLIBC__, __GLIBC_MINOR__);\n\treturn 0;\n}\n')
    asm, exe = os.path.join(tmp, 'probe.s'), os.path.join(tmp, 'probe')
    run([cc, '-std=gnu11', '-S', '-o', asm, src])
    run([cc, '-o', exe, asm])
    lines = run([exe]).splitlines()
    info = {}
    for t, line in zip(types, lines):
        cls, size, signed, ccp, cp, cvp, vp = map(int, line.split())
        info[t] = dict(cls=cls, size=size, signed=signed, const_char_p=ccp,
                       char_p=cp, const_void_p=cvp, void_p=vp)
    version = '%s.%s' % tuple(lines[len(types)].split())
    with open(asm) as f:
        refs = re.findall(r'^\s*\.quad\s+(\S+)', f.read(), re.M)
    if len(refs) != len(names):
        die('cannot read the symbol references of the probe')
    return info, version, dict(zip(names, refs))


# __builtin_classify_type values (gcc typeclass.h)
T_VOID, T_INT, T_CHAR, T_ENUM, T_BOOL, T_PTR, T_REAL, T_UNION = 0, 1, 2, 3, 4, 5, 8, 13


def code_of(t, info, ret):
    """The type code of one C type, before the buffer/string rules."""
    bare = t.replace('const ', '').strip()
    if t == 'void':
        return 'v' if ret else None
    i = info[t]
    if i['cls'] == T_PTR:
        return 'p'
    if i['cls'] == T_UNION and bare in UNIONS and i['size'] == 8:
        return UNIONS[bare]
    if i['cls'] in (T_INT, T_CHAR, T_ENUM, T_BOOL):
        if i['enum'] and i['size'] <= 4:
            return 'i'
        if bare in ('size_t', '__size_t'):
            return 'z'
        if i['size'] <= 4:
            return 'i' if i['signed'] else 'u'
        if i['size'] == 8:
            return 'l' if i['signed'] else 'L'
    if i['cls'] == T_REAL and i['size'] in (4, 8):
        return 'f' if i['size'] == 4 else 'd'
    return None


def types_of(name, ret, params, info):
    codes = []
    for k, t in enumerate(params):
        c = code_of(t, info, False)
        if c is None:
            die('%s: parameter %d has a type with no code: %s' % (name, k + 1, t))
        nxt = params[k + 1] if k + 1 < len(params) else None
        sized = nxt is not None and nxt.replace('const ', '').strip() in ('size_t', '__size_t') \
            and info[nxt]['cls'] == T_INT
        if c == 'p' and name not in NOT_BUFFER and info[t]['cls'] == T_PTR:
            i = info[t]
            if sized and (i['const_char_p'] or i['const_void_p']):
                c = 'b'
            elif sized and (i['char_p'] or i['void_p']):
                c = 'o'
            elif i['const_char_p']:
                c = 's'
        codes.append(c)
    r = code_of(ret, info, True)
    if r is None:
        die('%s: return type has no code: %s' % (name, ret))
    return r + ''.join(codes)


class Libc:
    """Exported symbols and a disassembly-based syscall reach of libc.so.6."""

    def __init__(self, path, sysnr, verify):
        self.syms = {}
        for line in run(['readelf', '-W', '--dyn-syms', path]).splitlines():
            f = line.split()
            if len(f) >= 8 and f[3] in ('FUNC', 'IFUNC') and f[6] != 'UND' and '@@' in f[7]:
                self.syms[f[7].split('@')[0]] = (int(f[1], 16), int(f[2]), f[3])
        self.exported_any = set()
        for line in run(['readelf', '-W', '--dyn-syms', path]).splitlines():
            f = line.split()
            if len(f) >= 8 and f[6] != 'UND':
                self.exported_any.add(f[7].split('@')[0])
        self.nrname = {v: k for k, v in sysnr.items()}
        if not verify:
            return
        self.fdes = []
        # readelf exits 1 on Debian's stripped libc (it warns about the empty
        # .eh_frame copy in the debuglink stub) but prints the real FDEs.
        for line in run(['readelf', '--debug-dump=frames', path], (0, 1)).splitlines():
            m = re.search(r'FDE cie=\w+ pc=([0-9a-f]+)\.\.([0-9a-f]+)', line)
            if m:
                self.fdes.append((int(m.group(1), 16), int(m.group(2), 16)))
        self.fdes.sort()
        self.fde_starts = [a for a, _ in self.fdes]
        self.insns = []
        dis = run(['objdump', '-d', '--no-show-raw-insn', '-j', '.text', path])
        for line in dis.splitlines():
            m = re.match(r'\s+([0-9a-f]+):\t(\S+)\s*(.*)$', line)
            if m:
                self.insns.append((int(m.group(1), 16), m.group(2), m.group(3)))
        self.addrs = [a for a, _, _ in self.insns]
        self.memo = {}

    def extent(self, addr, size=0):
        if size:
            return (addr, addr + size)
        i = bisect.bisect_right(self.fde_starts, addr) - 1
        if i >= 0 and self.fdes[i][0] <= addr < self.fdes[i][1]:
            return self.fdes[i]
        return None

    @classmethod
    def reg(cls, op):
        """'%eax' -> 'ax', '%r9d' -> 'r9', '%rdi' -> 'di'."""
        op = op.strip()
        m = re.match(r'%(r\d+)[dwb]?$', op)
        if m:
            return m.group(1)
        m = re.match(r'%[re]?([a-z]{2})$', op)
        return m.group(1) if m else None

    def scan(self, rng, follow_lea):
        """Syscall numbers made in [rng), direct targets outside it, errno stores."""
        i = bisect.bisect_left(self.addrs, rng[0])
        j = bisect.bisect_left(self.addrs, rng[1])
        consts, nrs, targets, errno_store = {}, set(), set(), False
        for addr, mn, op in self.insns[i:j]:
            ops = op.split('#')[0].strip()
            if mn == 'syscall':
                nrs.add(consts.get('ax'))
                consts.pop('ax', None)
                continue
            m = re.match(r'([0-9a-f]+) <', op)
            if m and (mn in ('call', 'jmp') or mn.startswith('j')):
                t = int(m.group(1), 16)
                if not rng[0] <= t < rng[1] and '@plt' not in op:
                    targets.add(t)
            if follow_lea and mn == 'lea':
                m = re.search(r'# ([0-9a-f]+) <', op)
                if m:
                    targets.add(int(m.group(1), 16))
            if '%fs:(' in ops.split(',')[-1] and mn.startswith('mov'):
                errno_store = True
            if mn == 'call':
                consts.clear()
                continue
            parts = ops.rsplit(',', 1)
            dst = self.reg(parts[-1]) if len(parts) == 2 else None
            if dst is None:
                continue
            src = parts[0]
            if mn in ('mov', 'movl', 'movq') and src.startswith('$'):
                consts[dst] = int(src[1:], 16) & 0xffffffff
            elif mn in ('mov', 'movl', 'movq') and self.reg(src) is not None:
                if self.reg(src) in consts:
                    consts[dst] = consts[self.reg(src)]
                else:
                    consts.pop(dst, None)
            elif mn == 'xor' and self.reg(src) == dst:
                consts[dst] = 0
            elif mn not in ('cmp', 'test') and not mn.startswith('cmp'):
                consts.pop(dst, None)
        return nrs, targets, errno_store

    def reach(self, addr, size=0, depth=3, ifunc=False):
        """Names of the syscalls made by the function at addr and its callees."""
        key = (addr, depth)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = set()
        rng = self.extent(addr, size)
        if rng is None:
            return set()
        nrs, targets, _ = self.scan(rng, ifunc)
        out = {self.nrname.get(n, '?') for n in nrs}
        if depth:
            for t in sorted(targets):
                out |= self.reach(t, 0, depth - 1, ifunc)
        self.memo[key] = out
        return out

    def stores_errno(self, name):
        a, size, _ = self.syms[name]
        return self.scan(self.extent(a, size), False)[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--libc', default='/lib/x86_64-linux-gnu/libc.so.6')
    ap.add_argument('--syscalls', default=os.path.join(ROOT, 'include/gov/syscalls.def'))
    ap.add_argument('-o', '--out', default=os.path.join(ROOT, 'include/gov/libc.def'))
    ap.add_argument('--cc', default='gcc')
    ap.add_argument('--no-verify', action='store_true',
                    help='do not check the syscall mapping against the disassembly')
    ap.add_argument('--explain', action='store_true',
                    help='print, for each entry, the syscalls its code reaches')
    args = ap.parse_args()

    sysnr = read_syscalls(args.syscalls)
    libc = Libc(args.libc, sysnr, not args.no_verify)
    report = []

    with tempfile.TemporaryDirectory(prefix='gen-libc.') as tmp:
        decls, enums = declarations(tmp, args.cc)

        wanted = {}
        for s in sysnr:
            if s in decls and s in libc.syms and s not in NOT_WRAPPERS:
                wanted[s] = SYSCALL_OF.get(s, (s, ''))
        for w, (s, note) in SYSCALL_OF.items():
            if s not in sysnr:
                die('SYSCALL_OF[%s]: %s is not in syscalls.def' % (w, s))
            if w not in decls or w not in libc.syms:
                report.append('note: %s is not declared or not exported here; skipped' % w)
                continue
            wanted[w] = (s, note)

        names = sorted(wanted)
        types = sorted({t for n in names for t in [decls[n][0]] + decls[n][1] if t != 'void'})
        info, version, binds = classify(tmp, args.cc, types, names)
        for t in types:
            bare = t.replace('const ', '').strip()
            info[t]['enum'] = bare.startswith('enum ') or bare in enums

    errors, entries = [], []
    for n in names:
        s, note = wanted[n]
        note = note or NOTES.get(n, '')
        ret, params, variadic = decls[n]
        if binds[n] != n:
            errors.append('%s binds to the symbol %s' % (n, binds[n]))
        t = types_of(n, ret, params, info)
        flags = '0'
        if variadic:
            if n not in VARIADIC_EXTRA:
                errors.append('%s is variadic: add its extra arguments to VARIADIC_EXTRA' % n)
                continue
            t += VARIADIC_EXTRA[n]
            flags = 'GOV_LIBC_VARIADIC'
        if len(t) - 1 > GOV_MAX_ARGS:
            errors.append('%s has %d parameters, more than GOV_MAX_ARGS' % (n, len(t) - 1))
        if n in ERRNUM:
            rc = 'GOV_RET_ERRNUM'
        elif n in MAP_FAILED:
            rc = 'GOV_RET_MAP_FAILED'
        else:
            rc = 'GOV_RET_LIBC'
        if (rc == 'GOV_RET_MAP_FAILED') != (t[0] == 'p' and n in MAP_FAILED):
            errors.append('%s: MAP_FAILED needs a pointer return' % n)
        if not args.no_verify:
            a, size, kind = libc.syms[n]
            got = libc.reach(a, size, ifunc=(kind == 'IFUNC'))
            own = libc.reach(a, size, depth=0, ifunc=(kind == 'IFUNC'))
            if args.explain:
                print('%-24s %-18s own: %-28s all: %s' % (n, s, ','.join(sorted(own)),
                      ','.join(sorted(got))), file=sys.stderr)
            if s not in got:
                errors.append('%s: recorded as %s, but its code reaches only %s'
                              % (n, s, ', '.join(sorted(got)) or 'no syscall'))
            if rc == 'GOV_RET_ERRNUM' and libc.stores_errno(n):
                errors.append('%s: listed in ERRNUM but stores to errno' % n)
        undeclared = re.search(r'\b%s\(' % re.escape(n), UNDECLARED) is not None
        comment = []
        if undeclared:
            comment.append('prototype curated: no glibc header declares it')
        if note:
            comment.append(note)
        entries.append((sysnr[s], n, s, t, rc, flags, '; '.join(comment)))

    for n in sorted(set(VARIADIC_EXTRA) | ERRNUM | MAP_FAILED | NOT_BUFFER | set(NOTES)):
        if n not in wanted and n in libc.syms:
            report.append('note: %s is listed in a table but is not an entry' % n)
    if errors:
        die('\n  '.join(['errors:'] + errors))

    entries.sort()
    out = []
    out.append('/* Generated by scripts/gen-libc.py; do not edit, rerun it.')
    out.append(' * From the glibc %s headers (prototypes, via gcc -aux-info), the' % version)
    out.append(' * exports and disassembly of libc.so.6 (the syscall each wrapper makes)')
    out.append(' * and include/gov/syscalls.def; see the script for the curated cases.')
    out.append(' *')
    out.append(' * One line per glibc function that wraps an x86-64 Linux syscall:')
    out.append(' *   GOV_LIBC_ENTRY(name, syscall_name, types, ret_conv, flags)')
    out.append(' * name          the exported function (its own symbol, default version)')
    out.append(' * syscall_name  the syscall it makes, a GOV_SYSCALL_ENTRY name')
    out.append(' * types         return type code, then one code per parameter (gov/types.def)')
    out.append(' * ret_conv      GOV_RET_LIBC: returns -1 (NULL for a pointer) and sets errno')
    out.append(' *               GOV_RET_ERRNUM: returns the error number, errno untouched')
    out.append(' *               GOV_RET_MAP_FAILED: returns (void *)-1 and sets errno')
    out.append(' * flags         0, or GOV_LIBC_VARIADIC: the function is variadic and the')
    out.append(' *               codes after its fixed parameters are the documented extra')
    out.append(' *               arguments, integers as L, pointers as p')
    out.append(' * Sorted by syscall number, then name. */')
    for nr, n, s, t, rc, flags, comment in entries:
        line = 'GOV_LIBC_ENTRY(%s, %s, "%s", %s, %s)' % (n, s, t, rc, flags)
        if comment:
            line += ' /* %s */' % comment
        out.append(line)
    text = '\n'.join(out) + '\n'
    tmpout = args.out + '.tmp'
    with open(tmpout, 'w') as f:
        f.write(text)
    os.replace(tmpout, args.out)

    covered = {e[2] for e in entries}
    missing = [s for s in sorted(sysnr, key=sysnr.get) if s not in covered]
    err = sys.stderr
    print('gen-libc.py: %d entries for %d of %d syscalls (glibc %s) -> %s'
          % (len(entries), len(covered), len(sysnr), version, os.path.relpath(args.out)), file=err)
    print('syscalls with no glibc wrapper (%d):' % len(missing), file=err)
    for s in missing:
        why = ''
        if s in wanted:
            why = " (glibc's %s() makes %s)" % (s, wanted[s][0])
        elif s in NOT_WRAPPERS:
            why = ' (%s)' % NOT_WRAPPERS[s]
        elif s in libc.syms:
            why = ' (exported, not declared by the headers)'
        elif s in libc.exported_any:
            why = ' (compat symbol only)'
        print('  %d %s%s' % (sysnr[s], s, why), file=err)
    print('left out on purpose:', file=err)
    for n, why in LEFT_OUT.items():
        print('  %s: %s' % (n, why), file=err)
    for r in report:
        print(r, file=err)


if __name__ == '__main__':
    main()
