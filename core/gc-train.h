/* gc-train.h — training a LoRA style on a model's UNet from captioned images.
 *
 * The recipe is kohya's (sd-scripts train_network.py) for the UNet:
 *  - each image is encoded once by the VAE (the mean of its latent distribution, scaled), and
 *    once more mirrored when flip augmentation is on (cached latents); each distinct caption
 *    is encoded once by the frozen text encoder (its first 77-token window, no emphasis
 *    syntax: captions are plain text, as kohya reads them);
 *  - images come in aspect-ratio buckets (the caller resized and cropped them: every image of
 *    one size is one bucket); a batch holds images of one bucket. An epoch visits every image
 *    once, in an order drawn from (seed, epoch);
 *  - a step: for each of `accumulation` batches, noise ε ~ N(0, 1) (plus noise_offset times a
 *    per-channel N(0, 1): the "noise offset"), a timestep t uniform in 0…999, the noisy latent
 *    x_t = √ᾱₜ·x₀ + √(1 − ᾱₜ)·ε, the UNet's prediction of ε (or of v for v-models), and the
 *    squared error averaged over the latent, weighted by Min-SNR-γ
 *    (min(SNR, γ)/SNR, or min(SNR, γ)/(SNR + 1) for v) when γ > 0; then one AdamW step on the
 *    mean of those losses, at a learning rate that rises linearly over `warmup` steps
 *    (lr·(s + 1)/warmup at step s) and then stays constant or follows a half cosine to 0;
 *  - a validation loss that depends on nothing random in training: for each validation image,
 *    `validation_timesteps` noise levels evenly spread over 0…999, with noise drawn once from
 *    the seed, plain mean squared error. Measured before the first step, every
 *    `validate_every` steps and after the last;
 *  - sample images every `sample_every` steps from the given prompts (fixed seed), through the
 *    model with the LoRA as it is then;
 *  - the training state (LoRA factors, AdamW moments, step, position in the epoch, the random
 *    generator's state) saved every `checkpoint_every` steps and when cancelled, with an
 *    atomic write, so the file always holds the last complete state; resuming from it
 *    continues exactly as the uninterrupted run (same parameters, same thread count: bitwise).
 *
 * All randomness of a run comes from one torch-compatible generator seeded with `seed` (noise,
 * timesteps, flips), plus the epoch orders and the validation noise derived from the seed.
 * The LoRA lives in the model's styles while the trainer exists (gc-train-lora.h), so sampling
 * or generating with the model meanwhile shows it. SD 1.x and 2.x; SDXL is refused.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gc-model.h"
#include "gc-train-lora.h"

typedef enum {
  GC_LR_CONSTANT,
  GC_LR_COSINE,
} gc_lr_schedule;

/* Gradient checkpointing (gc-unet.h): the block activations are computed a second time in the
 * backward instead of being kept: about a third more time per step, and at 512² with SD 1.5 two
 * GB less memory. AUTO keeps them when gc_unet_tape_bytes for the largest batch stays within a
 * quarter of the computer's memory. */
typedef enum {
  GC_CHECKPOINTING_AUTO,
  GC_CHECKPOINTING_ON,
  GC_CHECKPOINTING_OFF,
} gc_checkpointing;

typedef struct {
  /* the network */
  int64_t rank;                /* 16 */
  double alpha;                /* 16 */
  unsigned targets;            /* gc_train_target bits (GC_TRAIN_TARGET_DEFAULT) */
  /* optimisation */
  int64_t steps;               /* optimizer steps of the whole run */
  int64_t batch;               /* images per batch (1) */
  int64_t accumulation;        /* batches per optimizer step (1) */
  double learning_rate;        /* 1e-4 */
  gc_lr_schedule schedule;     /* constant */
  int64_t warmup;              /* warm-up steps (0) */
  double weight_decay;         /* AdamW's λ (0.01) */
  double min_snr_gamma;        /* 0 = plain MSE; 5 is the paper's choice */
  double noise_offset;         /* 0 = off; 0.05–0.1 lets the model learn darker and brighter */
  bool flip;                   /* also train on mirrored images */
  gc_checkpointing checkpointing; /* AUTO */
  uint64_t seed;               /* 0 */
  int clip_skip;               /* 0 = the model's default */
  /* validation */
  int64_t validate_every;      /* 0 = only before the first step and after the last */
  int validation_timesteps;    /* noise levels per validation image (4) */
  /* samples */
  const char *const *sample_prompts;
  size_t n_sample_prompts;
  int64_t sample_every;        /* 0 = only after the last step (when there are prompts) */
  int sample_steps;            /* 20 */
  double sample_cfg;           /* 7 */
  uint64_t sample_seed;        /* 42 */
  gc_sampler sample_sampler;   /* Euler a */
  int64_t sample_width, sample_height; /* 0 = the first training image's size */
  /* the training state */
  const char *state_path;      /* where it is saved (NULL: never) */
  int64_t checkpoint_every;    /* 0 = only when cancelled and at the end */
} gc_train_config;

/* The defaults noted above. */
void gc_train_config_defaults (gc_train_config *config);

/* One training image, already resized and cropped to its bucket. */
typedef struct {
  const float *pixels;   /* [3, height, width] in −1…1 */
  int64_t width, height; /* multiples of the model's pixel multiple (64 for SD) */
  const char *caption;
} gc_train_image;

typedef struct {
  int64_t step, steps;   /* optimizer steps done, of the run */
  int64_t epoch;
  double loss;           /* the step's training loss (weighted as trained) */
  double learning_rate;  /* the rate the step used */
  double seconds;        /* wall time of the step */
} gc_train_progress;

/* Called on the training thread; any may be NULL. */
typedef struct {
  void (*prepare) (void *ctx, int64_t done, int64_t total);  /* caching latents and captions */
  void (*step) (void *ctx, const gc_train_progress *progress);
  void (*validation) (void *ctx, int64_t step, double loss);
  /* image[3, height, width] in about −1…1 of sample prompt `index` after `step` steps */
  void (*sample) (void *ctx, int64_t step, size_t index, const float *image, int64_t width,
                  int64_t height);
  void (*checkpoint) (void *ctx, int64_t step, const char *path);
  void *ctx;
} gc_train_callbacks;

typedef struct gc_trainer gc_trainer;

/* Sets up a run: checks the configuration and images (GC_ERR_INVALID with the reason), makes
 * the LoRA on the model, encodes the images and captions, draws the validation noise. With no
 * validation images, the training images are used for validation. Cancellable
 * (GC_ERR_CANCELLED). The images are only read here; the model must outlive the trainer. */
gc_status gc_trainer_new (gc_trainer **out, gc_model *model, const gc_train_config *config,
                          const gc_train_image *train, size_t n_train,
                          const gc_train_image *validation, size_t n_validation,
                          const gc_train_callbacks *callbacks, const volatile int *cancel,
                          gc_error *err);
/* Removes the LoRA from the model and frees the trainer. */
void gc_trainer_free (gc_trainer *trainer);

/* Restores a state saved by a run of the same configuration on the same images
 * (GC_ERR_MISMATCH, naming what differs, otherwise). */
gc_status gc_trainer_resume (gc_trainer *trainer, const char *state_path, gc_error *err);

/* Trains until config.steps steps are done. When cancel is raised it stops after the current
 * step (or at once while validating or sampling), saves the state when there is a state path,
 * and returns GC_ERR_CANCELLED. */
gc_status gc_trainer_run (gc_trainer *trainer, const volatile int *cancel, gc_error *err);

/* Writes the state now (atomically). */
gc_status gc_trainer_save_state (gc_trainer *trainer, const char *path, gc_error *err);

/* The validation loss of the LoRA as it is now. */
gc_status gc_trainer_validation_loss (gc_trainer *trainer, double *loss,
                                      const volatile int *cancel, gc_error *err);

/* Writes the LoRA as a kohya file with kohya's training metadata (ss_steps, ss_learning_rate,
 * ss_network_dim…) and the caller's pairs (metadata[2i] = key, metadata[2i + 1] = value: the
 * base model's hashes, the tag frequencies, which the caller knows). */
gc_status gc_trainer_write_lora (gc_trainer *trainer, const char *path,
                                 const char *const *metadata, size_t n_metadata, gc_error *err);

int64_t gc_trainer_step (const gc_trainer *trainer);
/* The validation losses measured so far: before the first step and the latest (NAN if none). */
double gc_trainer_first_validation (const gc_trainer *trainer);
double gc_trainer_last_validation (const gc_trainer *trainer);
gc_train_lora *gc_trainer_lora (gc_trainer *trainer);
const gc_train_config *gc_trainer_config (const gc_trainer *trainer);
/* Whether the run checkpoints (AUTO decided when the trainer was made). */
bool gc_trainer_checkpointing (const gc_trainer *trainer);
