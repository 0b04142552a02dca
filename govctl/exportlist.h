/* govctl/exportlist.h - reading an export list (docs/abi.md "Export
 * lists"): the functions a resource exports, with their type strings. */
#ifndef GOVCTL_EXPORTLIST_H
#define GOVCTL_EXPORTLIST_H

#include <jansson.h>
#include <stddef.h>

/* Reads the export list at path into a new JSON array of
 * {"name", "types", "prototype"?} in file order. On a bad line or an
 * unreadable file returns NULL with "PATH:LINE:COL: what" (or "PATH: why")
 * in err. */
json_t *gov_exportlist_read(const char *path, char *err, size_t errlen);

/* Is s a C symbol an export list may name? */
int gov_export_name_ok(const char *s);

#endif
