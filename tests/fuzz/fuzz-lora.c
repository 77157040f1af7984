/* libFuzzer harness: any byte string opened as a LoRA for the tiny SD 1.x checkpoint (its path
 * in GOUACHE_FUZZ_MODEL) must be either refused with a message or accepted with a consistent
 * report; an accepted one is applied as a style and every weight it changes is merged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc-lora.h"
#include "gc-param.h"
#include "gc-styles.h"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static gc_checkpoint *checkpoint;
static gc_arena scratch;

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  const char *path = getenv ("GOUACHE_FUZZ_MODEL");
  gc_error err = { 0 };
  if (path == NULL || gc_checkpoint_open (&checkpoint, path, &err) != GC_OK)
    {
      fprintf (stderr, "set GOUACHE_FUZZ_MODEL to the tiny SD 1.x checkpoint (%s)\n",
               err.message);
      exit (1);
    }
  gc_arena_init (&scratch, 0);
  return 0;
}

/* Merges every styled weight of the checkpoint, as a pass of the model would. */
static void
merge_styled (void)
{
  for (size_t i = 0; i < gc_checkpoint_count (checkpoint); i++)
    {
      const char *key = gc_checkpoint_key (checkpoint, i);
      const gc_st_tensor *t = gc_checkpoint_tensor (checkpoint, i);
      gc_param p;
      if (*gc_checkpoint_patch_slot (checkpoint, key) == NULL
          || gc_param_bind (&p, checkpoint, key, t->ndim, t->shape, NULL) != GC_OK)
        continue;
      gc_arena_mark_t mark = gc_arena_mark (&scratch);
      if (gc_param_f32 (&scratch, &p) == NULL)
        abort ();
      gc_arena_reset (&scratch, mark);
    }
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  /* a copy of exactly size bytes, so that reading one byte past the end is caught */
  unsigned char *copy = malloc (size ? size : 1);
  if (copy == NULL)
    return 0;
  memcpy (copy, data, size);
  gc_lora *lora;
  gc_error err = { 0 };
  if (gc_lora_open_memory (&lora, copy, size, "fuzz.safetensors", checkpoint, &err) != GC_OK)
    {
      if (strlen (err.message) == 0)
        abort (); /* every refusal explains itself */
      free (copy);
      return 0;
    }
  gc_lora_report r = gc_lora_get_report (lora);
  if (r.applied + r.unmatched != r.tensors || r.unet_weights + r.text_weights == 0)
    abort ();
  for (size_t i = 0; i < r.unmatched; i++)
    if (gc_lora_unmatched (lora, i) == NULL)
      abort ();
  gc_styles *styles;
  if (gc_styles_new (&styles, checkpoint, &err) != GC_OK
      || gc_styles_add (styles, lora, 0.7, -1.3, &err) != GC_OK)
    abort ();
  merge_styled ();
  /* a second style on the same weights, then a new weight: the merges run again */
  gc_lora *again;
  if (gc_lora_open_memory (&again, copy, size, "fuzz.safetensors", checkpoint, &err) != GC_OK
      || gc_styles_add (styles, again, -2, 2, &err) != GC_OK
      || gc_styles_set_weights (styles, 0, 1.5, 0.25, &err) != GC_OK)
    abort ();
  merge_styled ();
  gc_styles_free (styles);
  free (copy);
  return 0;
}
