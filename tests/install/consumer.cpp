// consumer.cpp - herd from C++ (tests/install/install_consumer.sh): the
// installed headers' extern "C" make the library's symbols link.
#include <herd/herd.h>
#include <herd/herd_control.h> /* also in herd.h: each public header stands alone */

#include <cstdio>
#include <cstring>

int main()
{
    herd_ring_t *ring = herd_ring_new();
    const char *owner = nullptr;
    int rc = ring ? herd_ring_add(ring, "cxx", 128) : HERD_ENOMEM;
    if (rc == 0)
        rc = herd_ring_owner(ring, "key", 3, &owner);
    std::printf("herd_version %s from C++: owner %s (%s)\n", herd_version(),
                owner ? owner : "-", herd_err_name(rc));
    herd_ring_free(ring);
    return rc == 0 && std::strcmp(herd_version(), HERD_VERSION_STRING) == 0 ? 0 : 1;
}
