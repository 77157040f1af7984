/* gouache-training-page.h: the window's page for training a style from a folder of images
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

#define GOUACHE_TYPE_TRAINING_PAGE (gouache_training_page_get_type ())

G_DECLARE_FINAL_TYPE (GouacheTrainingPage, gouache_training_page, GOUACHE, TRAINING_PAGE, GtkBox)

GtkWidget  *gouache_training_page_new             (void);

void        gouache_training_page_set_model_path  (GouacheTrainingPage *self,
                                                   const char          *path);
/* Reads the folder on a worker and shows its report; the name and trigger word default to
 * the folder's name. */
void        gouache_training_page_set_dataset     (GouacheTrainingPage *self,
                                                   const char          *folder);
const char *gouache_training_page_get_dataset     (GouacheTrainingPage *self);
gboolean    gouache_training_page_get_running     (GouacheTrainingPage *self);
/* Starts training with the settings shown (as the Train button does). */
void        gouache_training_page_train           (GouacheTrainingPage *self);
/* Stops a running training after its current step; its state is kept. */
void        gouache_training_page_stop            (GouacheTrainingPage *self);

G_END_DECLS
