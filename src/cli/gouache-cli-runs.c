/* gouache-cli runs: the training runs recorded by gouache-cli train and the window.
 *
 *   runs list                 one line per run, newest first
 *   runs show RUN [--losses]  everything about a run (--losses: its loss curve as CSV)
 *   runs compare RUN RUN…     their settings side by side (those that differ) and their results
 */
#include "config.h"

#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gouache-cli.h"
#include "gouache-cli-runs.h"

GouacheRunStore *
gouache_cli_open_runs (const char *db, GError **error)
{
  g_autofree char *path = db ? g_strdup (db) : gouache_run_store_default_path ();
  return gouache_run_store_new (path, error);
}

static char *
format_time (gint64 unix_time)
{
  if (unix_time <= 0)
    return g_strdup ("-");
  g_autoptr (GDateTime) t = g_date_time_new_from_unix_local (unix_time);
  return g_date_time_format (t, "%Y-%m-%d %H:%M");
}

static char *
format_loss (double loss)
{
  return isnan (loss) ? g_strdup ("-") : g_strdup_printf ("%.5f", loss);
}

static int
list_runs (GouacheRunStore *store)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) runs = gouache_run_store_list (store, &error);
  if (runs == NULL)
    return gouache_cli_fail ("%s", error->message);
  if (runs->len == 0)
    {
      printf ("no training runs in %s\n", gouache_run_store_get_path (store));
      return 0;
    }
  printf ("%5s  %-16s  %-9s  %8s  %-19s  %7s  %s\n", "RUN", "STARTED", "STATUS", "STEPS",
          "VALIDATION LOSS", "S/STEP", "NAME");
  for (guint i = 0; i < runs->len; i++)
    {
      const GouacheRun *run = g_ptr_array_index (runs, i);
      g_autofree char *when = format_time (run->created);
      g_autofree char *first = format_loss (run->val_loss_first);
      g_autofree char *last = format_loss (run->val_loss_last);
      g_autofree char *losses = g_strdup_printf ("%s -> %s", first, last);
      printf ("%5" G_GINT64_FORMAT "  %-16s  %-9s  %8" G_GINT64_FORMAT "  %-19s  %7.2f  %s\n",
              run->id, when, gouache_run_status_to_string (run->status), run->steps, losses,
              run->seconds_per_step, run->name);
    }
  return 0;
}

static gboolean
parse_run (const char *text, gint64 *id)
{
  char *end;
  *id = g_ascii_strtoll (text, &end, 10);
  return *end == '\0' && end != text && *id > 0;
}

/* The run's parameters as a JSON object (an empty one if they are malformed). */
static JsonObject *
parameters_of (const GouacheRun *run, JsonParser *parser)
{
  if (run->parameters && json_parser_load_from_data (parser, run->parameters, -1, NULL)
      && JSON_NODE_HOLDS_OBJECT (json_parser_get_root (parser)))
    return json_node_get_object (json_parser_get_root (parser));
  return NULL;
}

static char *
member_text (JsonObject *o, const char *key)
{
  JsonNode *node = o ? json_object_get_member (o, key) : NULL;
  if (node == NULL)
    return g_strdup ("-");
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_DOUBLE)
    return g_strdup_printf ("%.6g", json_node_get_double (node));
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, node);
  g_autofree char *text = json_generator_to_data (gen, NULL);
  if (JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_STRING)
    return g_strdup (json_node_get_string (node));
  return g_steal_pointer (&text);
}

static int
show_run (GouacheRunStore *store, gint64 id, gboolean losses_csv)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GouacheRun) run = gouache_run_store_get (store, id, &error);
  g_autoptr (GPtrArray) files = run ? gouache_run_store_files (store, id, &error) : NULL;
  g_autoptr (GArray) losses = files ? gouache_run_store_losses (store, id, &error) : NULL;
  g_autoptr (GArray) validations = losses ? gouache_run_store_validations (store, id, &error) : NULL;
  g_autoptr (GPtrArray) samples = validations ? gouache_run_store_samples (store, id, &error) : NULL;
  if (samples == NULL)
    return gouache_cli_fail ("%s", error->message);
  if (losses_csv)
    {
      printf ("step,loss,learning_rate,seconds\n");
      for (guint i = 0; i < losses->len; i++)
        {
          const GouacheRunLoss *l = &g_array_index (losses, GouacheRunLoss, i);
          printf ("%" G_GINT64_FORMAT ",%.6g,%.6g,%.4f\n", l->step, l->loss, l->learning_rate,
                  l->seconds);
        }
      return 0;
    }
  g_autofree char *created = format_time (run->created);
  g_autofree char *finished = format_time (run->finished);
  printf ("run          %" G_GINT64_FORMAT " (%s)\n", run->id, gouache_run_status_to_string (run->status));
  printf ("name         %s\n", run->name);
  printf ("started      %s\nfinished     %s\n", created, finished);
  printf ("model        %s\n             sha256 %s\n", run->model_path, run->model_hash);
  printf ("dataset      %s\n             sha256 %s, %u training images\n", run->dataset_path,
          run->dataset_hash, files->len);
  printf ("steps        %" G_GINT64_FORMAT ", %.2f s/step\n", run->steps, run->seconds_per_step);
  if (run->output_path)
    printf ("output       %s\n             sha256 %s\n", run->output_path,
            run->output_hash ? run->output_hash : "-");
  if (run->state_path)
    printf ("state        %s\n", run->state_path);
  if (run->error)
    printf ("error        %s\n", run->error);
  g_autoptr (JsonParser) parser = json_parser_new ();
  JsonObject *parameters = parameters_of (run, parser);
  printf ("parameters\n");
  if (parameters)
    {
      g_autoptr (GList) members = json_object_get_members (parameters);
      for (const GList *l = members; l; l = l->next)
        {
          g_autofree char *value = member_text (parameters, l->data);
          printf ("  %-22s %s\n", (const char *) l->data, value);
        }
    }
  if (losses->len > 0)
    {
      double low = INFINITY, sum = 0;
      guint tail = MIN (losses->len, 50);
      for (guint i = 0; i < losses->len; i++)
        low = fmin (low, g_array_index (losses, GouacheRunLoss, i).loss);
      for (guint i = losses->len - tail; i < losses->len; i++)
        sum += g_array_index (losses, GouacheRunLoss, i).loss;
      printf ("training loss  first %.5f, lowest %.5f, mean of the last %u %.5f\n",
              g_array_index (losses, GouacheRunLoss, 0).loss, low, tail, sum / tail);
    }
  for (guint i = 0; i < validations->len; i++)
    {
      const GouacheRunValidation *v = &g_array_index (validations, GouacheRunValidation, i);
      printf ("validation   step %6" G_GINT64_FORMAT "  %.5f\n", v->step, v->loss);
    }
  for (guint i = 0; i < samples->len; i++)
    {
      const GouacheRunSample *s = g_ptr_array_index (samples, i);
      printf ("sample       step %6" G_GINT64_FORMAT "  %s  (%s)\n", s->step, s->path, s->prompt);
    }
  return 0;
}

static int
compare_runs (GouacheRunStore *store, int n, char **ids)
{
  g_autoptr (GPtrArray) runs = g_ptr_array_new_with_free_func ((GDestroyNotify) gouache_run_free);
  g_autoptr (GPtrArray) parsers = g_ptr_array_new_with_free_func (g_object_unref);
  g_autoptr (GHashTable) keys = g_hash_table_new (g_str_hash, g_str_equal);
  g_autoptr (GPtrArray) order = g_ptr_array_new ();
  for (int i = 0; i < n; i++)
    {
      gint64 id;
      g_autoptr (GError) error = NULL;
      if (!parse_run (ids[i], &id))
        return gouache_cli_fail ("'%s' is not a run number", ids[i]);
      GouacheRun *run = gouache_run_store_get (store, id, &error);
      if (run == NULL)
        return gouache_cli_fail ("%s", error->message);
      g_ptr_array_add (runs, run);
      JsonParser *parser = json_parser_new ();
      g_ptr_array_add (parsers, parser);
      JsonObject *o = parameters_of (run, parser);
      g_autoptr (GList) members = o ? json_object_get_members (o) : NULL;
      for (const GList *l = members; l; l = l->next)
        if (g_hash_table_add (keys, l->data))
          g_ptr_array_add (order, l->data);
    }
  printf ("%-22s", "");
  for (guint r = 0; r < runs->len; r++)
    printf ("  %-20" G_GINT64_FORMAT, ((GouacheRun *) g_ptr_array_index (runs, r))->id);
  printf ("\n");
  /* the settings that differ */
  for (guint k = 0; k < order->len; k++)
    {
      const char *key = g_ptr_array_index (order, k);
      g_autoptr (GPtrArray) values = g_ptr_array_new_with_free_func (g_free);
      gboolean differ = FALSE;
      for (guint r = 0; r < runs->len; r++)
        {
          JsonParser *parser = g_ptr_array_index (parsers, r);
          JsonNode *root = json_parser_get_root (parser);
          JsonObject *o = root && JSON_NODE_HOLDS_OBJECT (root) ? json_node_get_object (root) : NULL;
          g_ptr_array_add (values, member_text (o, key));
          differ = differ || strcmp (g_ptr_array_index (values, 0), g_ptr_array_index (values, r)) != 0;
        }
      if (!differ)
        continue;
      printf ("%-22s", key);
      for (guint r = 0; r < values->len; r++)
        printf ("  %-20.60s", (const char *) g_ptr_array_index (values, r));
      printf ("\n");
    }
  /* and the results */
  const char *rows[] = { "status", "steps", "s/step", "val_loss_first", "val_loss_last",
                         "val_loss_change", "dataset_sha256" };
  for (gsize k = 0; k < G_N_ELEMENTS (rows); k++)
    {
      printf ("%-22s", rows[k]);
      for (guint r = 0; r < runs->len; r++)
        {
          const GouacheRun *run = g_ptr_array_index (runs, r);
          g_autofree char *value = NULL;
          switch (k)
            {
            case 0: value = g_strdup (gouache_run_status_to_string (run->status)); break;
            case 1: value = g_strdup_printf ("%" G_GINT64_FORMAT, run->steps); break;
            case 2: value = g_strdup_printf ("%.2f", run->seconds_per_step); break;
            case 3: value = format_loss (run->val_loss_first); break;
            case 4: value = format_loss (run->val_loss_last); break;
            case 5:
              value = isnan (run->val_loss_first) || isnan (run->val_loss_last)
                        ? g_strdup ("-")
                        : g_strdup_printf ("%+.1f%%", 100 * (run->val_loss_last / run->val_loss_first - 1));
              break;
            default: value = g_strndup (run->dataset_hash, 12); break;
            }
          printf ("  %-20s", value);
        }
      printf ("\n");
    }
  return 0;
}

int
gouache_cli_runs (int argc, char **argv)
{
  g_autofree char *db = NULL;
  gboolean losses = FALSE;
  GOptionEntry entries[] = {
    { "db", 0, 0, G_OPTION_ARG_FILENAME, &db, "Run store (default: ~/.local/share/gouache/runs.db)", "FILE" },
    { "losses", 0, 0, G_OPTION_ARG_NONE, &losses, "show: print the loss at every step as CSV", NULL },
    { NULL },
  };
  if (!gouache_cli_parse (&argc, &argv, "list | show RUN | compare RUN RUN… - training runs",
                          "Lists, shows and compares the style training runs recorded by "
                          "gouache-cli train and the window.", entries))
    return 1;
  if (argc < 2)
    return gouache_cli_fail ("runs needs list, show RUN or compare RUN RUN… (see --help)");
  g_autoptr (GError) error = NULL;
  g_autoptr (GouacheRunStore) store = gouache_cli_open_runs (db, &error);
  if (store == NULL)
    return gouache_cli_fail ("%s", error->message);
  const char *action = argv[1];
  if (strcmp (action, "list") == 0 && argc == 2)
    return list_runs (store);
  if (strcmp (action, "show") == 0 && argc == 3)
    {
      gint64 id;
      if (!parse_run (argv[2], &id))
        return gouache_cli_fail ("'%s' is not a run number", argv[2]);
      return show_run (store, id, losses);
    }
  if (strcmp (action, "compare") == 0 && argc >= 4)
    return compare_runs (store, argc - 2, argv + 2);
  return gouache_cli_fail ("runs needs list, show RUN or compare RUN RUN… (see --help)");
}
