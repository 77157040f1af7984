/* gouache-cli-runs.h — the training-run store as gouache-cli train and runs open it. */
#pragma once

#include "gouache-run-store.h"

/* The store at db (--db), else the user's (g_get_user_data_dir ()/gouache/runs.db). */
GouacheRunStore *gouache_cli_open_runs (const char *db, GError **error);
