/* herd_version.c - the library's version (herd_version.h). */
#include "herd_version.h"

const char *herd_version(void)
{
    return HERD_VERSION_STRING;
}
