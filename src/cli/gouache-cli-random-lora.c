/* gouache-cli random-lora: deterministic random styles for a model, to benchmark blending and
 * to test with (gc-random-lora.h says what they hold). */
#include "config.h"

#include "gc-random-lora.h"
#include "gouache-cli.h"

int
gouache_cli_random_lora (int argc, char **argv)
{
  g_autofree char *model = NULL, *output = NULL;
  int rank = 32;
  gint64 seed = 1;
  const GOptionEntry entries[] = {
    { "model", 0, 0, G_OPTION_ARG_FILENAME, &model, "Checkpoint the style is for", "CKPT" },
    { "rank", 0, 0, G_OPTION_ARG_INT, &rank, "Rank of every module (default 32)", "R" },
    { "seed", 0, 0, G_OPTION_ARG_INT64, &seed, "Seed of the values (default 1)", "N" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "LoRA to write", "OUT.safetensors" },
    { NULL },
  };
  if (!gouache_cli_parse (&argc, &argv, "— write a deterministic random LoRA",
                          "Writes a kohya LoRA with the given rank on every attention and "
                          "text-encoder layer of the model, its values a pure function of the "
                          "seed. For benchmarks and tests: it is noise, not a style.",
                          entries))
    return 1;
  if (model == NULL || output == NULL)
    return gouache_cli_fail ("random-lora needs --model and --output (see --help)");
  gc_error err = { 0 };
  gc_checkpoint *checkpoint;
  if (gc_checkpoint_open (&checkpoint, model, &err))
    return gouache_cli_fail_core (&err);
  gc_status status = gc_random_lora_write (checkpoint, rank, (guint64) seed, output, &err);
  gc_checkpoint_close (checkpoint);
  return status ? gouache_cli_fail_core (&err) : 0;
}
