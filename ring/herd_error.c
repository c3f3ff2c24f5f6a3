/* herd_error.c - messages and names for herd's error codes (see herd_error.h). */
#include "herd_error.h"

const char *herd_strerror(int err)
{
    if (err == 0)
        return "success";
    switch (err) {
#define HERD_ERR_MSG(name, value, msg)                                        \
    case HERD_##name:                                                         \
        return msg;
        HERD_ERRNO_MAP(HERD_ERR_MSG)
#undef HERD_ERR_MSG
    }
    return "unknown error";
}

const char *herd_err_name(int err)
{
    if (err == 0)
        return "OK";
    switch (err) {
#define HERD_ERR_NAME(name, value, msg)                                       \
    case HERD_##name:                                                         \
        return #name;
        HERD_ERRNO_MAP(HERD_ERR_NAME)
#undef HERD_ERR_NAME
    }
    return "EUNKNOWN";
}
