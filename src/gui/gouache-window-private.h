/* gouache-window-private.h: the window's state, shared by its source files
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * gouache-window.c           the window: models, the empty state, messages, drops, actions
 * gouache-window-generate.c  controls → requests, the live preview, full generation, progress
 * gouache-window-history.c   the thumbnail strip, restoring settings, opening images
 * gouache-window-styles.c    the styles list
 * gouache-window-presets.c   the presets popover
 */

#pragma once

#include "gouache-error.h"
#include "gouache-history.h"
#include "gouache-infotext.h"
#include "gouache-job-engine.h"
#include "gouache-preset-store.h"
#include "gouache-preview-canvas.h"
#include "gouache-prompt-view.h"
#include "gouache-window.h"

G_BEGIN_DECLS

struct _GouacheWindow
{
  GtkApplicationWindow  parent_instance;

  /* Template widgets */
  GtkAdjustment        *cfg_adjustment;
  GouachePreviewCanvas *canvas;
  GtkWidget            *canvas_placeholder;
  GtkWidget            *canvas_placeholder_icon;
  GtkLabel             *canvas_placeholder_title;
  GtkSpinner           *canvas_spinner;
  GtkWidget            *controls_box;
  GtkWidget            *demo_bar;
  GtkWidget            *demo_button;
  GtkWidget            *empty_buttons;
  GtkWidget            *generate_button;
  GtkHeaderBar         *header_bar;
  GtkAdjustment        *height_adjustment;
  GtkFlowBox           *history_box;
  GtkRevealer          *history_revealer;
  GtkInfoBar           *info_bar;
  GtkLabel             *info_label;
  GtkWidget            *live_box;
  GtkSwitch            *live_switch;
  GtkWidget            *loading_box;
  GtkLabel             *loading_label;
  GtkSpinner           *loading_spinner;
  GtkStack             *main_stack;
  GouachePromptView    *negative_view;
  GtkWidget            *presets_button;
  GtkMenuButton        *primary_menu_button;
  GtkListBox           *presets_list;
  GtkProgressBar       *preview_progress;
  GtkProgressBar       *progress_bar;
  GtkLabel             *progress_label;
  GtkRevealer          *progress_revealer;
  GouachePromptView    *prompt_view;
  GtkWidget            *recent_box;
  GtkListBox           *recent_list;
  GtkComboBox          *sampler_combo;
  GtkListStore         *sampler_store;
  GtkComboBox          *schedule_combo;
  GtkListStore         *schedule_store;
  GtkAdjustment        *seed_adjustment;
  GtkListBox           *styles_list;
  GtkAdjustment        *steps_adjustment;
  GtkAdjustment        *width_adjustment;

  /* Owned references */
  GSettings            *settings;
  GtkFileChooserNative *chooser;
  GouacheJobEngine     *engine;
  GouacheHistory       *history;
  GouachePresetStore   *presets;            /* NULL when the store cannot be opened */
  GouachePreset        *deleted_preset;     /* for Undo */
  GCancellable         *cancellable;        /* cancelled when the window closes */
  GCancellable         *load_cancellable;   /* the model load in flight */
  GCancellable         *preview_cancellable;
  GCancellable         *full_cancellable;
  GouacheJobProgress   *progress;           /* of the job the canvas follows */
  GouacheJobResult     *unsaved;            /* a full image whose saving failed */
  char                 *model_path;         /* chosen; loaded once engine says so */
  char                 *info_action;        /* detailed action of the info bar's button */

  /* Main-loop state */
  guint                 preview_source;     /* the debounce timeout */
  gboolean              loading;
  gboolean              restoring;          /* controls are being set from saved settings */
  gboolean              preview_running;
  gboolean              full_running;
  int                   job_width;          /* the size of the image the canvas follows */
  int                   job_height;

  /* Size while not maximized, and whether maximized: saved on dispose */
  int                   width;
  int                   height;
  gboolean              maximized;
};

/* gouache-window.c */
void     _gouache_window_show_message        (GouacheWindow         *self,
                                              GtkMessageType         type,
                                              const char            *message,
                                              const char            *action_label,
                                              const char            *detailed_action);
void     _gouache_window_show_error          (GouacheWindow         *self,
                                              const GError          *error);
void     _gouache_window_hide_message        (GouacheWindow         *self);
void     _gouache_window_update_actions      (GouacheWindow         *self);

void     _gouache_window_emit_preview_finished (GouacheWindow       *self);
void     _gouache_window_emit_image_saved    (GouacheWindow         *self,
                                              const char            *path);

/* gouache-window-generate.c */
void     _gouache_window_sampler_changed_cb  (GouacheWindow         *self,
                                              GtkComboBox           *combo);
void     _gouache_window_setting_changed_cb  (GouacheWindow         *self);
void     _gouache_window_generate_init       (GouacheWindow         *self);
void     _gouache_window_generate_dispose    (GouacheWindow         *self);
void     _gouache_window_schedule_preview    (GouacheWindow         *self);
void     _gouache_window_generate            (GouacheWindow         *self);
void     _gouache_window_cancel              (GouacheWindow         *self);
void     _gouache_window_random_seed         (GouacheWindow         *self);
void     _gouache_window_model_loaded        (GouacheWindow         *self);
void     _gouache_window_update_placeholder  (GouacheWindow         *self);
void     _gouache_window_show_image          (GouacheWindow         *self,
                                              GdkPixbuf             *image);
gboolean _gouache_window_apply_info          (GouacheWindow         *self,
                                              const GouacheGenerationInfo *info,
                                              GString               *problems);

void     _gouache_window_build_request       (GouacheWindow         *self,
                                              GouacheJobKind         kind,
                                              GouacheJobRequest     *request);
void     _gouache_window_clear_request       (GouacheJobRequest     *request);

/* gouache-window-history.c */
void     _gouache_window_history_child_activated_cb (GouacheWindow  *self,
                                              GtkFlowBoxChild       *child,
                                              GtkFlowBox            *box);
void     _gouache_window_history_init        (GouacheWindow         *self);
void     _gouache_window_history_save        (GouacheWindow         *self,
                                              const GouacheJobResult *result);
void     _gouache_window_open_image          (GouacheWindow         *self,
                                              GFile                 *file);
void     _gouache_window_open_image_dialog   (GouacheWindow         *self);
void     _gouache_window_retry_save          (GouacheWindow         *self);
void     _gouache_window_history_open        (GouacheWindow         *self,
                                              gint64                 id);
void     _gouache_window_history_remove      (GouacheWindow         *self,
                                              gint64                 id);

/* gouache-window-styles.c */
gboolean _gouache_window_is_style_file       (const char            *path);
void     _gouache_window_add_style_file      (GouacheWindow         *self,
                                              GFile                 *file);
void     _gouache_window_add_style_dialog    (GouacheWindow         *self);
GouacheJobStyle *_gouache_window_get_styles  (GouacheWindow         *self,
                                              guint                 *n_styles);
void     _gouache_window_set_styles          (GouacheWindow         *self,
                                              const GouacheJobStyle *styles,
                                              guint                  n_styles);

/* gouache-window-presets.c */
void     _gouache_window_presets_init        (GouacheWindow         *self);
void     _gouache_window_presets_popover_show_cb (GouacheWindow     *self);
void     _gouache_window_presets_row_activated_cb (GouacheWindow    *self,
                                              GtkListBoxRow         *row,
                                              GtkListBox            *list);
void     _gouache_window_apply_preset        (GouacheWindow         *self,
                                              const GouachePreset   *preset);
gboolean _gouache_window_save_preset         (GouacheWindow         *self,
                                              const char            *name,
                                              GError               **error);
void     _gouache_window_save_preset_dialog  (GouacheWindow         *self);
void     _gouache_window_undo_delete_preset  (GouacheWindow         *self);
void     _gouache_window_import_presets      (GouacheWindow         *self,
                                              GFile                 *file);
void     _gouache_window_export_presets      (GouacheWindow         *self,
                                              GFile                 *file);
void     _gouache_window_presets_file_dialog (GouacheWindow         *self,
                                              GtkFileChooserAction   action);

G_END_DECLS
