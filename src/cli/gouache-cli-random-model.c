/* gouache-cli random-model: the deterministic random checkpoints of the oracle, made in C. */
#include "config.h"

#include "gc-random-checkpoint.h"
#include "gouache-cli.h"

int
gouache_cli_random_model (int argc, char **argv)
{
  g_autofree char *keys = NULL, *output = NULL;
  const GOptionEntry entries[] = {
    { "keys", 0, 0, G_OPTION_ARG_FILENAME, &keys, "Key/shape list (keys_tiny.json, keys_sd15.json…)",
      "KEYS.json" },
    { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output, "Checkpoint to write", "OUT.safetensors" },
    { NULL },
  };
  if (!gouache_cli_parse (&argc, &argv, "— write a deterministic random checkpoint",
                          "Writes the same file as the oracle's sdrand.py: every value a pure "
                          "function of the tensor name and index. Random weights draw noise, not "
                          "pictures: use it to test and benchmark.",
                          entries))
    return 1;
  if (keys == NULL || output == NULL)
    return gouache_cli_fail ("random-model needs --keys and --output (see --help)");
  gc_error err = { 0 };
  if (gc_random_checkpoint_write (keys, output, &err))
    return gouache_cli_fail_core (&err);
  return 0;
}
