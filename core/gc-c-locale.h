/* gc-c-locale.h — numbers in files and prompts are written and read with '.', whatever locale
 * the application runs in (GTK sets the user's: a German one would write and expect "0,5").
 * These work in the "C" numeric locale for the calling thread only, so they are safe to call
 * from any thread while others format numbers for display. */
#pragma once

#include <stddef.h>

double gc_c_strtod (const char *text, char **end);

int gc_c_snprintf (char *out, size_t size, const char *format, ...)
  __attribute__ ((format (printf, 3, 4)));
