/* tools/check_vae.c — `dit check` for the vae/ and taef2/ golden case folders. */
#include "tools/check.h"

int check_vae(check_run *r)
{
    check_error(r, "%s: this case family is not implemented yet", r->dir);
    return 1;
}
