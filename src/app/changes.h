/*
 * changes.h: making control-plane changes visible on every node at once.
 * After a change commits, the node that made it refreshes its own caches
 * and publishes a notice through the kv tier; every node applies notices
 * from the others. As a safety net a background thread compares the
 * store's state version every second and, when it moved, re-reads what the
 * store's change log names since the version it last applied (everything
 * cached only when the log cannot cover the gap), so a lost notice costs at
 * most a second and a change a bounded number of reads.
 *
 * changes_start makes the instance's feed (app->feed): it holds what a
 * change touches (the store, the key, kill and organisation caches, the kv
 * tier's notice channel), so the handlers that make changes get the feed
 * alone, not the instance (docs/architecture.md, "How modules get their
 * dependencies").
 */
#ifndef PORTCULLIS_APP_CHANGES_H
#define PORTCULLIS_APP_CHANGES_H

#include "app/app.h"

/** Start listening for notices and polling the state version. */
int changes_start(struct app *app);
/** Stop the poller. */
void changes_stop(struct app *app);

/** A key row changed (created, rotated, revoked, killed, lifted). */
void changes_key(struct changefeed *f, const char *key_id);
/** The kill-switch set changed. */
void changes_kills(struct changefeed *f);
/** An organisation changed (rate-limit override). */
void changes_org(struct changefeed *f, const char *org_id);
/** Reload the kill switches from the store now (start-up and recovery). */
int changes_reload_kills(struct changefeed *f);

#endif
