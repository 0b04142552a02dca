/* tests/gcc-plugin/api.h - a header whose every function is a target with
 * targets-header=api.h. */
#ifndef GP_API_H
#define GP_API_H
long api_open(const char *name);
long api_close(long handle);
#endif
