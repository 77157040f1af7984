/* gouache-cli: everything Gouache does, without a display. */
#include "config.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "gouache-cli.h"

typedef struct {
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} command;

static const command commands[] = {
  { "generate", gouache_cli_generate, "Draw an image from a prompt (or from an image)" },
  { "verify", gouache_cli_verify, "Check the engine against reference outputs" },
  { "inspect", gouache_cli_inspect, "Describe a model (and how it encodes a prompt)" },
  { "bench", gouache_cli_bench, "Measure speed and memory on a model" },
  { "random-model", gouache_cli_random_model,
    "Write a deterministic random checkpoint for tests and benchmarks" },
  { "blend", gouache_cli_blend, "Bake a blend of styles into one LoRA or checkpoint" },
  { "preset", gouache_cli_preset, "Save, list, show, rename, delete, export and import presets" },
  { "random-lora", gouache_cli_random_lora,
    "Write a deterministic random LoRA for tests and benchmarks" },
  { "train", gouache_cli_train, "Train a style (LoRA) on a folder of images" },
  { "runs", gouache_cli_runs, "List, show and compare training runs" },
};

static void
usage (FILE *out)
{
  fprintf (out, "Usage: gouache-cli COMMAND [OPTIONS]\n\n"
                "Gouache runs Stable Diffusion on your CPU.\n\nCommands:\n");
  for (size_t i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-14s %s\n", commands[i].name, commands[i].summary);
  fprintf (out, "\nRun 'gouache-cli COMMAND --help' for the options of a command.\n");
}

int
main (int argc, char **argv)
{
  /* messages and --help are UTF-8: let the C library know the terminal's charset */
  setlocale (LC_ALL, "");
  if (argc < 2 || strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0
      || strcmp (argv[1], "help") == 0)
    {
      usage (argc < 2 ? stderr : stdout);
      return argc < 2 ? 1 : 0;
    }
  if (strcmp (argv[1], "--version") == 0)
    {
      printf ("gouache-cli %s\n", PACKAGE_VERSION);
      return 0;
    }
  for (size_t i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      {
        g_autofree char *name = g_strdup_printf ("gouache-cli %s", commands[i].name);
        g_set_prgname (name); /* "Usage: gouache-cli generate …" in --help */
        return commands[i].run (argc - 1, argv + 1);
      }
  return gouache_cli_fail ("unknown command '%s' (see gouache-cli --help)", argv[1]);
}
