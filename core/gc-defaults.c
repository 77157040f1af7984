#include "gc-defaults.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

/* needle (lower case) in text, ignoring case */
static bool
mentions (const char *text, const char *needle)
{
  size_t n = strlen (needle);
  for (const char *p = text; p && *p; p++)
    {
      size_t i = 0;
      while (i < n && p[i] && tolower ((unsigned char) p[i]) == needle[i])
        i++;
      if (i == n)
        return true;
    }
  return false;
}

static gc_distillation
classify (const char *text)
{
  if (mentions (text, "turbo"))
    return GC_DISTILL_TURBO;
  if (mentions (text, "lcm") || mentions (text, "latent consistency"))
    return GC_DISTILL_LCM;
  return GC_DISTILL_NONE;
}

gc_distillation
gc_detect_distillation (const char *const *names, size_t n_names, const gc_checkpoint *checkpoint)
{
  static const char *const keys[] = { "modelspec.title", "modelspec.architecture",
                                      "modelspec.description", "ss_output_name",
                                      "ss_sd_model_name" };
  for (size_t k = 0; checkpoint && k < sizeof keys / sizeof *keys; k++)
    {
      gc_distillation d = classify (gc_checkpoint_metadata (checkpoint, keys[k]));
      if (d != GC_DISTILL_NONE)
        return d;
    }
  for (size_t i = 0; i < n_names; i++)
    {
      gc_distillation d = classify (names[i]);
      if (d != GC_DISTILL_NONE)
        return d;
    }
  return GC_DISTILL_NONE;
}

const char *
gc_distillation_name (gc_distillation d)
{
  switch (d)
    {
    case GC_DISTILL_TURBO: return "Turbo";
    case GC_DISTILL_LCM: return "LCM";
    case GC_DISTILL_NONE: return "base";
    }
  return "base";
}

gc_sampling_defaults
gc_sampling_defaults_for (gc_family family, gc_distillation d)
{
  switch (d)
    {
    case GC_DISTILL_TURBO:
      return (gc_sampling_defaults) { GC_SAMPLER_EULER_A, GC_SCHEDULE_TRAILING, 1, 1.0 };
    case GC_DISTILL_LCM:
      return (gc_sampling_defaults) { GC_SAMPLER_LCM, GC_SCHEDULE_DEFAULT, 4, 1.0 };
    case GC_DISTILL_NONE:
      break;
    }
  return (gc_sampling_defaults) { GC_SAMPLER_EULER_A, GC_SCHEDULE_DEFAULT, 20,
                                  family == GC_FAMILY_SDXL ? 5.0 : 7.0 };
}
