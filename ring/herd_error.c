/* herd_error.c - messages and names for herd's error codes (see herd_error.h). */
#include "herd_error.h"

int herd_app_error(int code)
{
    return code >= 1 && code <= HERD_APP_ERROR_MAX ? HERD_APP_ERROR_BASE - code : HERD_EINVAL;
}

int herd_app_error_code(int status)
{
    /* written so no value of status overflows */
    return status < HERD_APP_ERROR_BASE && status >= HERD_APP_ERROR_BASE - HERD_APP_ERROR_MAX
               ? HERD_APP_ERROR_BASE - status
               : 0;
}

const char *herd_strerror(int err)
{
    if (err == 0)
        return "success";
    if (herd_app_error_code(err))
        return "the service's own error";
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
    if (herd_app_error_code(err))
        return "EAPP";
    switch (err) {
#define HERD_ERR_NAME(name, value, msg)                                       \
    case HERD_##name:                                                         \
        return #name;
        HERD_ERRNO_MAP(HERD_ERR_NAME)
#undef HERD_ERR_NAME
    }
    return "EUNKNOWN";
}
