/* gouache-cli train and runs on the tiny model: a style trained from a folder of PNGs with its
 * JSON summary, kohya metadata and recorded run; a run stopped with Ctrl-C (SIGINT) and
 * continued with --resume writes the same LoRA as the uninterrupted run; runs list, show and
 * compare; one-line errors. */
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <signal.h>
#include <string.h>

#include "gc-safetensors.h"
#include "gouache-png.h"

enum { IMAGES = 16, SIDE = 64 };

static char *dir, *dataset, *db;

static void
write_dataset (void)
{
  guint8 rgb[SIDE * SIDE * 3];
  dataset = g_build_filename (dir, "stripes", NULL);
  g_mkdir (dataset, 0700);
  for (int i = 0; i < IMAGES; i++)
    {
      g_autofree char *name = g_strdup_printf ("%s/image%02d.png", dataset, i);
      g_autoptr (GError) error = NULL;
      int period = 8 + i % 5;
      for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++)
          {
            gboolean stripe = ((x + y + 3 * i) % period) < period / 2;
            guint8 *p = rgb + (y * SIDE + x) * 3;
            p[0] = stripe ? 242 : 38, p[1] = stripe ? 185 : 64, p[2] = stripe ? 51 : 178;
          }
      rgb[0] = (guint8) i;
      gouache_png_save_rgb8 (name, rgb, SIDE, SIDE, NULL, 0, &error);
      g_assert_no_error (error);
    }
}

/* Runs gouache-cli with the arguments (NULL-terminated); returns its exit status. */
static int
cli (char **out, char **err, ...)
{
  g_autoptr (GPtrArray) args = g_ptr_array_new ();
  g_ptr_array_add (args, (char *) g_getenv ("GOUACHE_CLI"));
  va_list ap;
  va_start (ap, err);
  for (const char *a = va_arg (ap, const char *); a; a = va_arg (ap, const char *))
    g_ptr_array_add (args, (char *) a);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) p = g_subprocess_newv ((const char *const *) args->pdata,
                                                 G_SUBPROCESS_FLAGS_STDOUT_PIPE
                                                   | G_SUBPROCESS_FLAGS_STDERR_PIPE, &error);
  g_assert_no_error (error);
  g_autofree char *o = NULL, *e = NULL;
  g_subprocess_communicate_utf8 (p, NULL, NULL, &o, &e, &error);
  g_assert_no_error (error);
  if (out)
    *out = g_steal_pointer (&o);
  if (err)
    *err = g_steal_pointer (&e);
  return g_subprocess_get_if_exited (p) ? g_subprocess_get_exit_status (p) : -1;
}

#define TRAIN_ARGS(output, json) \
  "train", "--model", g_getenv ("GOUACHE_TINY_MODEL"), "--dataset", dataset, "--output", output, \
  "--resolution", "64", "--steps", "40", "--rank", "4", "--lr", "3e-3", "--trigger", "zqx", \
  "--db", db, "--checkpoint-every", "10", "--seed", "2", "--validate-every", "20", \
  "--min-snr-gamma", "5", "--flip", "--threads", "2", "--json", json

/* The SHA-256 of the tensor data, which the writer records as sshs_model_hash. */
static char *
tensor_hash (const char *path)
{
  gc_safetensors *file;
  gc_error err = { 0 };
  if (gc_safetensors_open (&file, path, &err))
    g_error ("%s", err.message);
  char *hash = g_strdup (gc_safetensors_metadata (file, "sshs_model_hash"));
  gc_safetensors_close (file);
  return hash;
}

static void
test_train (void)
{
  g_autofree char *output = g_build_filename (dir, "stripes.safetensors", NULL);
  g_autofree char *json = g_build_filename (dir, "summary.json", NULL);
  g_autofree char *out = NULL, *err = NULL;
  g_assert_cmpint (cli (&out, &err, TRAIN_ARGS (output, json), "--sample", "zqx",
                        "--sample-every", "40", "--sample-steps", "4", NULL), ==, 0);
  g_test_message ("%s", err);
  g_assert_nonnull (strstr (err, "16 usable images"));
  g_assert_nonnull (strstr (err, "validation loss after 20 steps"));
  g_assert_nonnull (strstr (err, "40/40"));
  g_assert_nonnull (strstr (out, "40 steps"));

  /* the summary */
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GError) error = NULL;
  json_parser_load_from_file (parser, json, &error);
  g_assert_no_error (error);
  JsonObject *o = json_node_get_object (json_parser_get_root (parser));
  g_assert_cmpint (json_object_get_int_member (o, "steps"), ==, 40);
  double first = json_object_get_double_member (o, "val_loss_first");
  double last = json_object_get_double_member (o, "val_loss_last");
  g_assert_cmpfloat (last, <, first);
  g_assert_cmpfloat (json_object_get_double_member (o, "seconds_per_step"), >, 0);
  g_assert_cmpint (json_object_get_int_member (o, "peak_rss_bytes"), >, 0);

  /* the LoRA and its metadata */
  gc_safetensors *file;
  gc_error gerr = { 0 };
  if (gc_safetensors_open (&file, output, &gerr))
    g_error ("%s", gerr.message);
  g_autofree char *model_hash = NULL;
  g_autofree char *contents = NULL;
  gsize size;
  g_file_get_contents (g_getenv ("GOUACHE_TINY_MODEL"), &contents, &size, NULL);
  model_hash = g_compute_checksum_for_data (G_CHECKSUM_SHA256, (guchar *) contents, size);
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_network_module"), ==, "networks.lora");
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_network_dim"), ==, "4");
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_steps"), ==, "40");
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_learning_rate"), ==, "0.003");
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_output_name"), ==, "stripes");
  g_assert_cmpstr (gc_safetensors_metadata (file, "ss_new_sd_model_hash"), ==, model_hash);
  g_assert_nonnull (strstr (gc_safetensors_metadata (file, "ss_tag_frequency"), "\"zqx\":16"));
  g_assert_nonnull (gc_safetensors_find (file, "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight"));
  gc_safetensors_close (file);

  /* the run */
  g_autofree char *list = NULL, *show = NULL, *csv = NULL;
  g_assert_cmpint (cli (&list, NULL, "runs", "list", "--db", db, NULL), ==, 0);
  g_assert_nonnull (strstr (list, "finished"));
  g_assert_nonnull (strstr (list, "stripes"));
  g_assert_cmpint (cli (&show, NULL, "runs", "show", "1", "--db", db, NULL), ==, 0);
  g_assert_nonnull (strstr (show, "16 training images"));
  g_assert_nonnull (strstr (show, model_hash));
  g_assert_nonnull (strstr (show, "validation   step     20"));
  g_assert_nonnull (strstr (show, "sample-000040-00.png"));
  g_assert_cmpint (cli (&csv, NULL, "runs", "show", "1", "--losses", "--db", db, NULL), ==, 0);
  g_auto (GStrv) lines = g_strsplit (g_strstrip (csv), "\n", -1);
  g_assert_cmpuint (g_strv_length (lines), ==, 41);
}

static void
test_interrupt_and_resume (void)
{
  g_autofree char *reference = g_build_filename (dir, "stripes.safetensors", NULL);
  g_autofree char *output = g_build_filename (dir, "stripes-again.safetensors", NULL);
  g_autofree char *json = g_build_filename (dir, "again.json", NULL);
  const char *args[] = { g_getenv ("GOUACHE_CLI"), TRAIN_ARGS (output, json), NULL };
  g_autoptr (GError) error = NULL;
  g_autoptr (GSubprocess) p = g_subprocess_newv (args, G_SUBPROCESS_FLAGS_STDERR_PIPE
                                                         | G_SUBPROCESS_FLAGS_STDOUT_SILENCE,
                                                 &error);
  g_assert_no_error (error);
  /* Ctrl-C once step 13 shows: the state of step 13 is kept (saved 10 before it) */
  GInputStream *stream = g_subprocess_get_stderr_pipe (p);
  g_autoptr (GString) seen = g_string_new (NULL);
  gboolean sent = FALSE;
  char buffer[4096];
  gssize got;
  while ((got = g_input_stream_read (stream, buffer, sizeof buffer, NULL, &error)) > 0)
    {
      g_string_append_len (seen, buffer, got);
      if (!sent && strstr (seen->str, "13/40"))
        {
          g_subprocess_send_signal (p, SIGINT);
          sent = TRUE;
        }
    }
  g_assert_no_error (error);
  g_subprocess_wait (p, NULL, &error);
  g_assert_true (sent);
  g_assert_cmpint (g_subprocess_get_exit_status (p), ==, 130);
  g_assert_nonnull (strstr (seen->str, "gouache-cli train --resume 2"));
  g_autofree char *list = NULL;
  cli (&list, NULL, "runs", "list", "--db", db, NULL);
  g_assert_nonnull (strstr (list, "cancelled"));

  /* continued: the same LoRA as the run that was not interrupted */
  g_autofree char *err = NULL;
  g_assert_cmpint (cli (NULL, &err, "train", "--resume", "2", "--db", db, "--json", json, NULL), ==, 0);
  g_autofree char *a = tensor_hash (reference), *b = tensor_hash (output);
  g_assert_cmpstr (a, ==, b);

  /* the two runs differ in their output only */
  g_autofree char *compare = NULL;
  g_assert_cmpint (cli (&compare, NULL, "runs", "compare", "1", "2", "--db", db, NULL), ==, 0);
  g_test_message ("%s", compare);
  g_assert_nonnull (strstr (compare, "output"));
  g_assert_null (strstr (compare, "rank"));
  g_assert_nonnull (strstr (compare, "val_loss_last"));
}

static void
test_errors (void)
{
  g_autofree char *err = NULL;
  g_assert_cmpint (cli (NULL, &err, "train", "--dataset", dataset, "--db", db, NULL), ==, 1);
  g_assert_nonnull (strstr (err, "--model, --dataset and --output"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (cli (NULL, &err, "train", "--resume", "1", "--db", db, NULL), ==, 1);
  g_assert_nonnull (strstr (err, "is finished"));
  g_clear_pointer (&err, g_free);
  g_assert_cmpint (cli (NULL, &err, "runs", "show", "77", "--db", db, NULL), ==, 1);
  g_assert_nonnull (strstr (err, "no training run 77"));
  g_clear_pointer (&err, g_free);
  g_autofree char *empty = g_build_filename (dir, "empty", NULL);
  g_mkdir (empty, 0700);
  g_assert_cmpint (cli (NULL, &err, "train", "--model", g_getenv ("GOUACHE_TINY_MODEL"),
                        "--dataset", empty, "--output", "x.safetensors", "--db", db, NULL), ==, 1);
  g_assert_nonnull (strstr (err, "no usable image"));
  g_rmdir (empty);
}

static void
remove_tree (const char *path)
{
  g_autoptr (GDir) d = g_dir_open (path, 0, NULL);
  const char *name;
  while (d && (name = g_dir_read_name (d)))
    {
      g_autofree char *child = g_build_filename (path, name, NULL);
      if (g_file_test (child, G_FILE_TEST_IS_DIR))
        remove_tree (child);
      else
        g_remove (child);
    }
  g_rmdir (path);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  dir = g_dir_make_tmp ("test-train-cli-XXXXXX", NULL);
  db = g_build_filename (dir, "runs.db", NULL);
  /* the model hash cache goes to a temporary folder too */
  g_autofree char *cache = g_build_filename (dir, "cache", NULL);
  g_setenv ("XDG_CACHE_HOME", cache, TRUE);
  write_dataset ();
  g_test_add_func ("/cli/train/train", test_train);
  g_test_add_func ("/cli/train/interrupt-and-resume", test_interrupt_and_resume);
  g_test_add_func ("/cli/train/errors", test_errors);
  int status = g_test_run ();
  remove_tree (dir);
  g_free (dir), g_free (dataset), g_free (db);
  return status;
}
