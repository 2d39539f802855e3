/*
 * killswitch.h: the engaged kill switches, held in memory for the hot path
 * and replaced wholesale from the store after any change (the table is
 * small: a handful of rows in an incident). Checked widest first: global,
 * organization, key (docs/contract.md, check 4).
 */
#ifndef PORTCULLIS_POLICY_KILLSWITCH_H
#define PORTCULLIS_POLICY_KILLSWITCH_H

#include <stdbool.h>

#include "store/store.h"

enum kill_scope { KILL_NONE = 0, KILL_GLOBAL, KILL_ORG, KILL_KEY };

struct killset;

struct killset *killset_create(void);
void killset_destroy(struct killset *ks);
/** Replace the whole set (copies kills). */
void killset_load(struct killset *ks, const struct store_kill *kills, int n);
/**
 * The widest switch that stops this key. Operator (root) keys are stopped
 * only by a kill of the key itself: the operator must be able to lift a
 * global or organisation kill through the API during the incident.
 * *out (may be NULL) gets the switch.
 */
enum kill_scope killset_check(struct killset *ks, const char *org_id, const char *key_id,
                              bool root_key, struct store_kill *out);
/** The switch for (scope, target) if engaged. */
bool killset_get(struct killset *ks, const char *scope, const char *target_id,
                 struct store_kill *out);
/** "global", "organization", "key". */
const char *kill_scope_name(enum kill_scope s);

#endif
