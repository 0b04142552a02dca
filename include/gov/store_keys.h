/* gov/store_keys.h - where things live in the rule store (rules/store.h).
 * Values are JSON objects unless said otherwise. Documented in docs/store.md.
 *
 *   /resources/<name>          {"name","type","refs":[...],"privilege":"user"|"kernel",
 *                               "exports":[...], "signatures":[{"name","types",
 *                               "prototype"?}] (optional: register --exports-file)}
 *   /layers                    {"layers":["application",...],
 *                               "edges":[["application","service"],...]}
 *                              absent: the default layer set (GOV_DEFAULT_LAYERS)
 *   /rules/<name>/current      the version in force, as decimal text: "3"
 *   /rules/<name>/v/<NNNNNNNNNN>  version N of rule <name>: the YAML text as
 *                               published, immutable (N zero-padded to 10 digits)
 *   /rules/<name>/routes       JSON array: the resources the current version is
 *                              routed to ("*" for rows that name none)
 *   /routes/<resource>/<name>  the version of rule <name> routed to <resource>'s
 *                              agent ("*" for every agent); an agent watches
 *                              only /routes/<its resource>/ and /routes/STAR/
 *                              (STAR being the character *)
 *   /tasklets/<resource>/<tasklet>  {"disabled":true}: govctl tasklet disable
 *                              wrote it, enable deletes it; the agent of
 *                              <resource> watches /tasklets/<resource>/ and
 *                              refuses the tasklet's schedulings while it is
 *                              there, across restarts (docs/tasklet.md)
 *   /resource-epoch            the name of the last resource registered: every
 *                              registration writes it, and a layer-set publish
 *                              compares it, so neither can slip past the
 *                              other's check
 */
#ifndef GOV_STORE_KEYS_H
#define GOV_STORE_KEYS_H

#define GOV_KEY_RESOURCES "/resources/"
#define GOV_KEY_LAYERS "/layers"
#define GOV_KEY_RULES "/rules/"
#define GOV_KEY_RESOURCE_EPOCH "/resource-epoch"
#define GOV_RULE_VERSION_FMT "/rules/%s/v/%010llu"
#define GOV_RULE_CURRENT_FMT "/rules/%s/current"
/* the object (eBPF ELF or wasm) of dynamic entry I of version N, as built
 * and verified at publish: rule, version, entry (docs/dynrules.md) */
#define GOV_RULE_OBJ_FMT "/rules/%s/obj/%010llu/%u"
#define GOV_RULE_ROUTES_FMT "/rules/%s/routes"
#define GOV_KEY_ROUTES "/routes/"
#define GOV_ROUTE_FMT "/routes/%s/%s"   /* resource (or "*"), rule */
#define GOV_ROUTE_ALL "*"
#define GOV_KEY_TASKLETS "/tasklets/"
#define GOV_TASKLET_STATE_FMT "/tasklets/%s/%s" /* resource, tasklet */
#define GOV_TASKLET_DISABLED "{\"disabled\":true}"

/* The paper's layer set: each layer calls only the next one down. */
#define GOV_DEFAULT_LAYERS                                                     \
	"{\"layers\":[\"application\",\"service\",\"driver\",\"hardware\"],"      \
	"\"edges\":[[\"application\",\"service\"],[\"service\",\"driver\"],"      \
	"[\"driver\",\"hardware\"]]}"

#endif
