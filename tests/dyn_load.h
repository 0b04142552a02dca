/* tests/dyn_load.h - loading one of the built test rules (DYN_OBJS/NAME.bpf.o
 * or .wasm) with a spec, as the dynamic-rule tests (t_dyn_modes.c,
 * t_dyn_wasm.c) do. Header-only, static: each test includes it once. */
#ifndef DYN_LOAD_H
#define DYN_LOAD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../rules/dynamic/dynrt.h"
#include "../rules/dynamic/build.h"

/* NULL with why in err if it does not read or load. */
static struct gov_dynrule *dyn_load(int mode, const char *name, const struct gov_dyn_spec *base,
				    char *err, size_t errlen)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s%s", DYN_OBJS, name, mode == GOV_DYN_EBPF ? ".bpf.o" : ".wasm");
	void *obj;
	size_t len;
	err[0] = 0;
	if (gov_dyn_read(path, &obj, &len, err, errlen) < 0)
		return NULL;
	struct gov_dyn_spec s = base ? *base : (struct gov_dyn_spec){ 0 };
	s.mode = (uint8_t)mode;
	snprintf(s.name, sizeof s.name, "%s", strrchr(name, '/') + 1);
	struct gov_dynrule *r = gov_dynrule_load(&s, obj, len, err, errlen);
	free(obj);
	return r;
}

#endif
