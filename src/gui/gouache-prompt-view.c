/* gouache-prompt-view.c: a prompt pane with its token counter
 *
 * Copyright Gouache contributors
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * The counter shows the prompt's tokens against the room of the 75-token chunks it takes
 * ("42 / 75", "80 / 150"), counted as the engine will encode the prompt (emphasis and BREAK
 * included). Where a new chunk starts, the first word of that chunk is highlighted: text near
 * a chunk boundary is encoded apart from the words before it, which artists want to see.
 */

#define G_LOG_DOMAIN "gouache-prompt-view"

#include "config.h"

#include <glib/gi18n.h>

#include "gouache-prompt-view.h"

/* How long to wait before asking a tokenizer that is still loading again. */
#define RETRY_MS 250

struct _GouachePromptView
{
  GtkBox            parent_instance;

  /* Template widgets */
  GtkTextBuffer    *buffer;
  GtkLabel         *counter_label;
  GtkLabel         *placeholder_label;
  GtkTextView      *text_view;
  GtkLabel         *title_label;

  /* Owned references */
  GouacheJobEngine *engine;
  GtkTextTag       *chunk_tag;

  guint             retry_source;
  guint             n_chunk_marks;
};

G_DEFINE_FINAL_TYPE (GouachePromptView, gouache_prompt_view, GTK_TYPE_BOX)

enum {
  PROP_0,
  PROP_TITLE,
  PROP_PLACEHOLDER_TEXT,
  PROP_TEXT,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void gouache_prompt_view_update_counter (GouachePromptView *self);

static gboolean
retry_cb (gpointer user_data)
{
  GouachePromptView *self = user_data;

  self->retry_source = 0;
  gouache_prompt_view_update_counter (self);
  return G_SOURCE_REMOVE;
}

static gsize
count_windows (GouachePromptView *self,
               const char        *text,
               gsize              length)
{
  g_autofree char *prefix = g_strndup (text, length);
  gsize tokens = 0, windows = 1;

  gouache_job_engine_count_tokens (self->engine, prefix, &tokens, &windows);
  return windows;
}

/* Byte offsets of the ends of the whitespace-separated words of text. */
static GArray *
word_ends (const char *text)
{
  GArray *ends = g_array_new (FALSE, FALSE, sizeof (gsize));
  gboolean in_word = FALSE;
  const char *p;

  for (p = text; ; p = g_utf8_next_char (p))
    {
      gboolean space = *p == '\0' || g_unichar_isspace (g_utf8_get_char (p));
      gsize end = (gsize) (p - text);

      if (in_word && space)
        g_array_append_val (ends, end);
      in_word = !space;
      if (*p == '\0')
        break;
    }

  return ends;
}

/* Index of the first word whose end puts the prompt into more than `windows` windows:
 * windows only grow as words are added, so a binary search finds it. */
static guint
first_word_beyond (GouachePromptView *self,
                   const char        *text,
                   GArray            *ends,
                   gsize              windows)
{
  guint low = 0, high = ends->len;

  while (low < high)
    {
      guint middle = (low + high) / 2;

      if (count_windows (self, text, g_array_index (ends, gsize, middle)) > windows)
        high = middle;
      else
        low = middle + 1;
    }

  return low;
}

static void
tag_word (GouachePromptView *self,
          const char        *text,
          GArray            *ends,
          guint              word)
{
  gsize end = g_array_index (ends, gsize, word);
  gsize start = word > 0 ? g_array_index (ends, gsize, word - 1) : 0;
  GtkTextIter start_iter, end_iter;

  while (g_unichar_isspace (g_utf8_get_char (text + start)))
    start = g_utf8_next_char (text + start) - text;

  gtk_text_buffer_get_iter_at_offset (self->buffer, &start_iter,
                                      (int) g_utf8_pointer_to_offset (text, text + start));
  gtk_text_buffer_get_iter_at_offset (self->buffer, &end_iter,
                                      (int) g_utf8_pointer_to_offset (text, text + end));
  gtk_text_buffer_apply_tag (self->buffer, self->chunk_tag, &start_iter, &end_iter);
  self->n_chunk_marks++;
}

/* Highlights the first word of each chunk after the first. */
static void
mark_chunks (GouachePromptView *self,
             const char        *text,
             gsize              windows)
{
  g_autoptr(GArray) ends = word_ends (text);
  GtkTextIter start, end;

  gtk_text_buffer_get_bounds (self->buffer, &start, &end);
  gtk_text_buffer_remove_tag (self->buffer, self->chunk_tag, &start, &end);
  self->n_chunk_marks = 0;

  for (gsize k = 1; k < windows; k++)
    {
      guint word = first_word_beyond (self, text, ends, k);

      if (word < ends->len)
        tag_word (self, text, ends, word);
    }
}

static void
gouache_prompt_view_update_counter (GouachePromptView *self)
{
  g_autofree char *text = gouache_prompt_view_get_text (self);
  g_autofree char *counter = NULL;
  g_autofree char *tooltip = NULL;
  gsize tokens = 0, windows = 0;

  if (self->engine == NULL || !gouache_job_engine_count_tokens (self->engine, text, &tokens, &windows))
    {
      gtk_label_set_text (self->counter_label, "");
      if (self->engine != NULL && self->retry_source == 0)
        self->retry_source = g_timeout_add (RETRY_MS, retry_cb, self);
      return;
    }

  /* Translators: tokens used / tokens available in the prompt's chunks, e.g. "42 / 75" */
  counter = g_strdup_printf (_("%zu / %zu"), tokens, windows * 75);
  gtk_label_set_text (self->counter_label, counter);

  if (windows > 1)
    tooltip = g_strdup_printf (ngettext ("%zu token in %zu chunk of 75; each chunk is encoded on its own and its first word is highlighted",
                                         "%zu tokens in %zu chunks of 75; each chunk is encoded on its own and its first word is highlighted",
                                         tokens),
                               tokens, windows);
  else
    tooltip = g_strdup_printf (ngettext ("%zu token of 75 in one chunk",
                                         "%zu tokens of 75 in one chunk",
                                         tokens),
                               tokens);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->counter_label), tooltip);

  mark_chunks (self, text, windows);
}

static void
buffer_changed_cb (GouachePromptView *self,
                   GtkTextBuffer     *buffer)
{
  gtk_widget_set_visible (GTK_WIDGET (self->placeholder_label),
                          gtk_text_buffer_get_char_count (buffer) == 0);
  gouache_prompt_view_update_counter (self);
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_TEXT]);
}

static void
gouache_prompt_view_get_property (GObject    *object,
                                  guint       prop_id,
                                  GValue     *value,
                                  GParamSpec *pspec)
{
  GouachePromptView *self = GOUACHE_PROMPT_VIEW (object);

  switch (prop_id)
    {
    case PROP_TITLE:
      g_value_set_string (value, gtk_label_get_label (self->title_label));
      break;
    case PROP_PLACEHOLDER_TEXT:
      g_value_set_string (value, gtk_label_get_label (self->placeholder_label));
      break;
    case PROP_TEXT:
      g_value_take_string (value, gouache_prompt_view_get_text (self));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_prompt_view_set_property (GObject      *object,
                                  guint         prop_id,
                                  const GValue *value,
                                  GParamSpec   *pspec)
{
  GouachePromptView *self = GOUACHE_PROMPT_VIEW (object);

  switch (prop_id)
    {
    case PROP_TITLE:
      gtk_label_set_label (self->title_label, g_value_get_string (value));
      break;
    case PROP_PLACEHOLDER_TEXT:
      gtk_label_set_label (self->placeholder_label, g_value_get_string (value));
      break;
    case PROP_TEXT:
      gouache_prompt_view_set_text (self, g_value_get_string (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
gouache_prompt_view_dispose (GObject *object)
{
  GouachePromptView *self = GOUACHE_PROMPT_VIEW (object);

  g_clear_handle_id (&self->retry_source, g_source_remove);
  g_clear_object (&self->engine);

  G_OBJECT_CLASS (gouache_prompt_view_parent_class)->dispose (object);
}

static void
gouache_prompt_view_class_init (GouachePromptViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = gouache_prompt_view_dispose;
  object_class->get_property = gouache_prompt_view_get_property;
  object_class->set_property = gouache_prompt_view_set_property;

  /* The pane's heading, with a mnemonic ("_Prompt"). */
  properties[PROP_TITLE] =
    g_param_spec_string ("title", NULL, NULL,
                         NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /* Shown, dimmed, while the prompt is empty. */
  properties[PROP_PLACEHOLDER_TEXT] =
    g_param_spec_string ("placeholder-text", NULL, NULL,
                         NULL,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  /* The prompt; notified on every edit. */
  properties[PROP_TEXT] =
    g_param_spec_string ("text", NULL, NULL,
                         NULL,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);

  g_object_class_install_properties (object_class, N_PROPS, properties);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/io/github/gouache/Gouache/ui/gouache-prompt-view.ui");
  gtk_widget_class_bind_template_child (widget_class, GouachePromptView, buffer);
  gtk_widget_class_bind_template_child (widget_class, GouachePromptView, counter_label);
  gtk_widget_class_bind_template_child (widget_class, GouachePromptView, placeholder_label);
  gtk_widget_class_bind_template_child (widget_class, GouachePromptView, text_view);
  gtk_widget_class_bind_template_child (widget_class, GouachePromptView, title_label);
  gtk_widget_class_bind_template_callback (widget_class, buffer_changed_cb);
}

static void
gouache_prompt_view_init (GouachePromptView *self)
{
  GdkRGBA highlight = { 0.208, 0.518, 0.894, 0.22 };

  gtk_widget_init_template (GTK_WIDGET (self));

  self->chunk_tag = gtk_text_buffer_create_tag (self->buffer, "chunk-start",
                                                "background-rgba", &highlight,
                                                "underline", PANGO_UNDERLINE_SINGLE,
                                                NULL);
}

/**
 * gouache_prompt_view_get_text:
 * @self: a #GouachePromptView
 *
 * Returns: (transfer full): the prompt
 */
char *
gouache_prompt_view_get_text (GouachePromptView *self)
{
  GtkTextIter start, end;

  g_return_val_if_fail (GOUACHE_IS_PROMPT_VIEW (self), NULL);

  gtk_text_buffer_get_bounds (self->buffer, &start, &end);
  return gtk_text_buffer_get_text (self->buffer, &start, &end, FALSE);
}

void
gouache_prompt_view_set_text (GouachePromptView *self,
                              const char        *text)
{
  g_autofree char *current = NULL;

  g_return_if_fail (GOUACHE_IS_PROMPT_VIEW (self));

  current = gouache_prompt_view_get_text (self);
  if (g_strcmp0 (current, text ? text : "") != 0)
    gtk_text_buffer_set_text (self->buffer, text ? text : "", -1);
}

/**
 * gouache_prompt_view_set_engine:
 * @self: a #GouachePromptView
 * @engine: (nullable): the engine whose tokenizer counts the tokens
 */
void
gouache_prompt_view_set_engine (GouachePromptView *self,
                                GouacheJobEngine  *engine)
{
  g_return_if_fail (GOUACHE_IS_PROMPT_VIEW (self));
  g_return_if_fail (engine == NULL || GOUACHE_IS_JOB_ENGINE (engine));

  if (g_set_object (&self->engine, engine))
    gouache_prompt_view_update_counter (self);
}

/**
 * gouache_prompt_view_get_counter:
 * @self: a #GouachePromptView
 *
 * Returns: the counter as shown ("42 / 75"), or "" while the tokenizer loads
 */
const char *
gouache_prompt_view_get_counter (GouachePromptView *self)
{
  g_return_val_if_fail (GOUACHE_IS_PROMPT_VIEW (self), NULL);

  return gtk_label_get_text (self->counter_label);
}

/**
 * gouache_prompt_view_get_text_view:
 * @self: a #GouachePromptView
 *
 * Returns: (transfer none): the text view, to focus it
 */
GtkTextView *
gouache_prompt_view_get_text_view (GouachePromptView *self)
{
  g_return_val_if_fail (GOUACHE_IS_PROMPT_VIEW (self), NULL);

  return self->text_view;
}

/**
 * gouache_prompt_view_get_n_chunk_marks:
 * @self: a #GouachePromptView
 *
 * Returns: how many chunk starts are highlighted (one less than the chunks)
 */
guint
gouache_prompt_view_get_n_chunk_marks (GouachePromptView *self)
{
  g_return_val_if_fail (GOUACHE_IS_PROMPT_VIEW (self), 0);

  return self->n_chunk_marks;
}
