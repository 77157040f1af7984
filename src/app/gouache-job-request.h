/* gouache-job-request.h: what one generation is asked to draw
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A request snapshots every setting of one generation. The window fills one in on the stack
 * with borrowed strings; gouache_job_engine_generate_async() deep-copies it into its task, and
 * from then on the copy is never written again, so the worker can read it without locks while
 * the window goes on changing its controls.
 */

#pragma once

#include <glib-object.h>

#include "gc-sampler.h"

G_BEGIN_DECLS

typedef enum {
  GOUACHE_JOB_PREVIEW, /* the live preview: reduced size and steps, nothing saved */
  GOUACHE_JOB_FULL,    /* the image itself, which the window saves and adds to the history */
} GouacheJobKind;

/* One enabled style (LoRA) and its weight. */
typedef struct {
  char *path;    /* the .safetensors file */
  char *name;    /* the name the image's settings give it ("Lora hashes") */
  double weight; /* W = W₀ + weight·ΔW */
} GouacheJobStyle;

typedef struct {
  GouacheJobKind kind;
  char *prompt;            /* A1111 emphasis syntax; "" for none */
  char *negative;          /* "" for none */
  GouacheJobStyle *styles; /* n_styles of them, in the order they are blended */
  guint n_styles;
  gc_sampler sampler;
  gc_schedule_type schedule;
  int steps;
  double cfg;
  guint64 seed;
  int width;               /* pixels, multiples of the model's pixel multiple */
  int height;
} GouacheJobRequest;

#define GOUACHE_TYPE_JOB_REQUEST (gouache_job_request_get_type ())

GType              gouache_job_request_get_type         (void) G_GNUC_CONST;
GouacheJobRequest *gouache_job_request_copy             (const GouacheJobRequest *request);
void               gouache_job_request_free             (GouacheJobRequest       *request);
gboolean           gouache_job_request_schedule_allowed (gc_sampler               sampler,
                                                         gc_schedule_type         schedule);
char              *gouache_job_request_styles_to_json   (const GouacheJobRequest *request);
GouacheJobStyle   *gouache_job_request_styles_from_json (const char              *json,
                                                         guint                   *n_styles,
                                                         GError                 **error);
void               gouache_job_styles_free              (GouacheJobStyle         *styles,
                                                         guint                    n_styles);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouacheJobRequest, gouache_job_request_free)

G_END_DECLS
