/* gouache-cli inspect: what a checkpoint is (family, sizes, precision) and, with --prompt, how a
 * prompt tokenizes and encodes — a quick check that a downloaded model loads. */
#include "config.h"

#include <math.h>
#include <stdio.h>

#include "gc-pipeline.h"
#include "gc-prompt.h"
#include "gouache-cli.h"

static void
print_model (gc_model *m, const char *path)
{
  const gc_model_info *info = gc_model_get_info (m);
  const gc_checkpoint *c = gc_model_checkpoint (m);
  const gc_unet_config *u = gc_unet_get_config (gc_model_unet (m));
  const gc_text_encoder_config *t = gc_text_encoder_get_config (gc_model_text_encoder (m));
  size_t by_dtype[GC_DTYPE_COUNT] = { 0 };
  double bytes = 0;
  for (size_t i = 0; i < gc_checkpoint_count (c); i++)
    {
      const gc_st_tensor *tensor = gc_checkpoint_tensor (c, i);
      by_dtype[tensor->dtype]++;
      bytes += (double) tensor->nbytes;
    }
  printf ("model          %s\n", path);
  printf ("family         %s\n", gc_family_name (info->family));
  printf ("tensors        %zu (%.0f MB)", gc_checkpoint_count (c), bytes / 1e6);
  for (int d = 0; d < GC_DTYPE_COUNT; d++)
    if (by_dtype[d])
      printf (", %zu %s", by_dtype[d], gc_dtype_name ((gc_dtype) d));
  printf ("\ntext encoder   %lld layers, width %lld, %lld heads, %s (%s names)\n",
          (long long) t->layers, (long long) t->width, (long long) t->heads,
          t->activation == GC_ACT_GELU ? "GELU" : "quick-GELU",
          t->open_clip ? "OpenCLIP" : "Hugging Face");
  printf ("UNet           %lld base channels, context %lld, latents %lld channels\n",
          (long long) u->model_channels, (long long) u->context_dim, (long long) u->in_channels);
  printf ("prediction     %s (%s)\n", gc_prediction_name (info->prediction),
          gc_prediction_source_name (info->prediction_source));
  printf ("image sizes    multiples of %lld pixels\n", (long long) info->pixel_multiple);
}

static int
print_prompt (gc_model *m, const char *prompt)
{
  gc_error err = { 0 };
  gc_prompt_tokens tokens;
  if (gc_prompt_tokenize (gc_model_tokenizer (m), prompt, gc_model_get_info (m)->pad_id, &tokens,
                          &err))
    return gouache_cli_fail_core (&err);
  printf ("prompt         %zu tokens in %lld window(s) of 75\n", tokens.tokens,
          (long long) tokens.windows);
  gc_prompt_tokens_free (&tokens);
  float *context;
  int64_t rows;
  gint64 start = g_get_monotonic_time ();
  if (gc_encode_prompt (m, prompt, 0, &context, &rows, &err))
    return gouache_cli_fail_core (&err);
  double seconds = (g_get_monotonic_time () - start) / 1e6;
  int64_t dim = gc_model_get_info (m)->context_dim;
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < rows * dim; i++)
    sum += context[i], sq += (double) context[i] * context[i];
  double mean = sum / (double) (rows * dim);
  printf ("encoding       [%lld, %lld] in %.3f s, mean %.4f, std %.4f\n", (long long) rows,
          (long long) dim, seconds, mean, sqrt (sq / (double) (rows * dim) - mean * mean));
  free (context);
  return 0;
}

int
gouache_cli_inspect (int argc, char **argv)
{
  g_autofree char *model_path = NULL, *prompt = NULL;
  int threads = 0;
  const GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "Checkpoint (.safetensors or diffusers folder)", "CKPT" },
    { "prompt", 'p', 0, G_OPTION_ARG_STRING, &prompt, "Also tokenize and encode this prompt", "TEXT" },
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "CPU threads (default: all cores)", "N" },
    { NULL },
  };
  if (!gouache_cli_parse (&argc, &argv, "— describe a model",
                          "Loads a checkpoint and prints its family and sizes as read from its "
                          "weights; with --prompt, tokenizes and encodes the prompt.",
                          entries))
    return 1;
  if (model_path == NULL)
    return gouache_cli_fail ("inspect needs --model (see --help)");
  gouache_cli_set_threads (threads);
  g_autofree char *vocab = gouache_cli_data_file ("bpe_simple_vocab_16e6.txt.gz");
  gc_model *m;
  gc_error err = { 0 };
  if (gc_model_open (&m, model_path, vocab, &err))
    return gouache_cli_fail_core (&err);
  print_model (m, model_path);
  int status = prompt ? print_prompt (m, prompt) : 0;
  gc_model_free (m);
  return status;
}
