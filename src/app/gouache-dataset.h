/* gouache-dataset.h: a folder of training images, checked, captioned and fitted into buckets
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * A dataset is a folder of PNG, JPEG and WebP images (read by gdk-pixbuf; WebP needs its
 * loader installed), each with an optional caption: a UTF-8 text file of the same name with
 * the extension .txt ("cat.png" → "cat.txt"), as kohya's trainer reads them. Scanning decodes
 * every image once and sorts the files into usable images and problems: unreadable files,
 * images whose shorter side is below a minimum, and duplicates (identical bytes, by SHA-256;
 * the first in name order is kept). The dataset's hash covers what training reads: the usable
 * images' hashes and captions, in name order.
 *
 * Training sees each image resized and cropped into an aspect-ratio bucket: buckets are the
 * sizes of about resolution² pixels whose sides are multiples of the model's pixel multiple,
 * from half to twice the resolution (kohya's make_bucket_resolutions); an image goes to the
 * bucket nearest its aspect ratio, is scaled to cover it and cropped to its centre.
 */

#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct {
  char *path;       /* the image file */
  char *name;       /* its file name */
  char *caption;    /* the sidecar's text, whitespace trimmed; NULL without a sidecar */
  char  sha256[65]; /* of the file's bytes */
  int   width;      /* as displayed (EXIF orientation applied) */
  int   height;
} GouacheDatasetImage;

typedef struct {
  char      *folder;
  GPtrArray *images;           /* GouacheDatasetImage: the usable images, by name */
  GPtrArray *unreadable;       /* char *: "name: reason" */
  GPtrArray *too_small;        /* char *: "name (W×H)" */
  GPtrArray *duplicates;       /* char *: "name = earlier name" */
  guint      missing_captions; /* usable images without a sidecar */
  char      *hash;             /* SHA-256 hex of the usable images and captions */
} GouacheDataset;

typedef struct {
  int width;
  int height;
} GouacheBucket;

void            gouache_dataset_free            (GouacheDataset            *dataset);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (GouacheDataset, gouache_dataset_free)

/* Reads the folder (not its subfolders). min_side: images whose shorter side is below it are
 * set aside as too small. Fails only when the folder cannot be listed, or when cancelled. */
GouacheDataset *gouache_dataset_scan            (const char                *folder,
                                                 int                        min_side,
                                                 GCancellable              *cancellable,
                                                 GError                   **error);

/* The caption an image trains with: the sidecar's text with "trigger, " in front when the text
 * does not contain the trigger word, or the trigger word alone without a sidecar (or with an
 * empty one). A NULL or empty trigger leaves the text as it is. */
char           *gouache_dataset_caption         (const GouacheDatasetImage *image,
                                                 const char                *trigger);

/* The buckets for a resolution (multiple of `multiple`), as GouacheBucket values. */
GArray         *gouache_dataset_buckets         (int                        resolution,
                                                 int                        multiple);
GouacheBucket   gouache_dataset_bucket_for      (const GArray              *buckets,
                                                 int                        width,
                                                 int                        height);

/* The image scaled to cover the bucket and cropped to its centre, transparency composited on
 * white: [3, height, width] float values in −1…1 (g_free them). */
float          *gouache_dataset_load            (const GouacheDatasetImage *image,
                                                 GouacheBucket              bucket,
                                                 GError                   **error);

/* ss_tag_frequency as kohya writes it: {"<folder name>": {"tag": count, …}}, the tags being
 * the comma-separated parts of each image's caption (with the trigger). */
char           *gouache_dataset_tag_frequency   (const GouacheDataset      *dataset,
                                                 const char                *trigger);

/* A report for people: how many images are usable, every problem by file, captions, and how
 * the images fall into the buckets of the resolution. Translated; ends with a newline. */
char           *gouache_dataset_report          (const GouacheDataset      *dataset,
                                                 int                        resolution,
                                                 int                        multiple,
                                                 const char                *trigger);

G_END_DECLS
