#include "gc-c-locale.h"

#include <locale.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void
make_c_locale (void)
{
  c_locale = newlocale (LC_NUMERIC_MASK, "C", (locale_t) 0);
}

/* Switches this thread to the C numeric locale; returns what to switch back to (0: nothing). */
static locale_t
enter_c (void)
{
  pthread_once (&c_locale_once, make_c_locale);
  return c_locale ? uselocale (c_locale) : (locale_t) 0;
}

static void
leave_c (locale_t previous)
{
  if (c_locale)
    uselocale (previous);
}

double
gc_c_strtod (const char *text, char **end)
{
  locale_t previous = enter_c ();
  double d = strtod (text, end);
  leave_c (previous);
  return d;
}

int
gc_c_snprintf (char *out, size_t size, const char *format, ...)
{
  locale_t previous = enter_c ();
  va_list args;
  va_start (args, format);
  int n = vsnprintf (out, size, format, args);
  va_end (args);
  leave_c (previous);
  return n;
}
