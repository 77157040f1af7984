/* gouache-cli.h — what the subcommands of gouache-cli share.
 *
 * Each subcommand is `int gouache_cli_<name> (int argc, char **argv)`: it parses its own
 * options, does the work, and returns the exit status (0 success, 1 any failure), printing a
 * failure as one line on stderr.
 */
#pragma once

#include <glib.h>

#include "gc-error.h"

int gouache_cli_verify (int argc, char **argv);
int gouache_cli_generate (int argc, char **argv);
int gouache_cli_bench (int argc, char **argv);
int gouache_cli_inspect (int argc, char **argv);
int gouache_cli_random_model (int argc, char **argv);
int gouache_cli_random_lora (int argc, char **argv);
int gouache_cli_blend (int argc, char **argv);
int gouache_cli_preset (int argc, char **argv);
int gouache_cli_train (int argc, char **argv);
int gouache_cli_runs (int argc, char **argv);

/* Prints "gouache-cli: <message>" on stderr and returns 1. */
int gouache_cli_fail (const char *format, ...) G_GNUC_PRINTF (1, 2);

/* The same for an engine error (its message already names the problem). */
int gouache_cli_fail_core (const gc_error *err);

/* Parses options with a GOptionContext titled with the command's usage; on a bad option prints
 * the error and returns FALSE. */
gboolean gouache_cli_parse (int *argc, char ***argv, const char *usage, const char *summary,
                            const GOptionEntry *entries);

/* Path of a file shipped in data/ (the installed copy, or the source tree's when running from
 * the build tree); GOUACHE_DATA_DIR overrides. */
char *gouache_cli_data_file (const char *name);

/* Sets the engine's thread count (0 = all cores). */
void gouache_cli_set_threads (int threads);

/* Raised by Ctrl-C (SIGINT) once gouache_cli_catch_interrupt () was called; the engine checks it
 * between steps and stops cleanly. */
extern volatile int gouache_cli_interrupted;
void gouache_cli_catch_interrupt (void);

/* A progress line on stderr: "[#####·····] step 3/20  2.1 s/it  ETA 36 s". */
typedef struct {
  gint64 started;
  gint64 last_draw;
  const char *label;
} GouacheCliProgress;

void gouache_cli_progress_start (GouacheCliProgress *progress, const char *label);
void gouache_cli_progress_update (GouacheCliProgress *progress, int done, int total);
void gouache_cli_progress_finish (GouacheCliProgress *progress);
