/* tests/test_schedule.c — sampler/schedule.c against every entry of the golden
 * schedules/schedules.json (SD3 shift 1 and 3, FLUX schnell and dev at several sizes and step
 * counts), within the golden 2e-6 absolute; plus known values and the custom-list parser. */
#include <cJSON.h>

#include "core/safetensors.h"
#include "sampler/schedule.h"
#include "tests/test.h"

static double max_abs_diff(const float *a, const float *b, int n)
{
    double e = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d == d)) d = INFINITY;
        e = d > e ? d : e;
    }
    return e;
}

static void t_golden(tctx *t)
{
    if (!test_golden_present(t)) return;
    char p[1200];
    snprintf(p, sizeof p, "%s/schedules/schedules.json", test_golden_dir());
    char *text = test_read_file(p, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    snprintf(p, sizeof p, "%s/schedules/schedules.safetensors", test_golden_dir());
    st_file *f = NULL;
    dit_err e = { 0 };
    CHECK(t, j && st_open(&f, p, &e) == DIT_OK, "schedules.json/.safetensors: %s", e.msg);
    int n_sd3 = 0, n_flux = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "entries"))
    {
        const char *kind = cJSON_GetObjectItemCaseSensitive(it, "kind")->valuestring;
        const int n = (int)cJSON_GetObjectItemCaseSensitive(it, "steps")->valuedouble;
        float got[1001];
        if (n < 1 || n > 1000) continue;
        if (!strcmp(kind, "sd3")) {
            const float shift = (float)cJSON_GetObjectItemCaseSensitive(it, "shift")->valuedouble;
            const st_tensor *s = st_find(f, cJSON_GetObjectItemCaseSensitive(it, "sigmas")->valuestring);
            const st_tensor *ts = st_find(f, cJSON_GetObjectItemCaseSensitive(it, "timesteps")->valuestring);
            CHECK(t, s && ts && s->numel == (uint64_t)n + 1 && ts->numel >= (uint64_t)n, "sd3 entry %d tensors", n);
            if (!s || !ts) continue;
            sched_sd3(got, n, shift);
            const double err = max_abs_diff(got, s->data, n + 1);
            CHECK(t, err <= 2e-6, "sd3 shift %g steps %d: sigmas off by %g", shift, n, err);
            float tsg[1001];
            for (int i = 0; i < (int)ts->numel; i++) tsg[i] = 1000.0f * got[i];
            const double et = max_abs_diff(tsg, ts->data, (int)ts->numel) / 1000.0;
            CHECK(t, et <= 2e-6, "sd3 shift %g steps %d: timesteps/1000 off by %g", shift, n, et);
            n_sd3++;
        } else {
            const int shift = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "shift"));
            const int L = (int)cJSON_GetObjectItemCaseSensitive(it, "image_seq_len")->valuedouble;
            const int H = (int)cJSON_GetObjectItemCaseSensitive(it, "height")->valuedouble;
            const int W = (int)cJSON_GetObjectItemCaseSensitive(it, "width")->valuedouble;
            const st_tensor *ts = st_find(f, cJSON_GetObjectItemCaseSensitive(it, "timesteps")->valuestring);
            CHECK(t, ts && ts->numel == (uint64_t)n + 1, "flux entry tensors");
            CHECK(t, L == ((H + 15) / 16) * ((W + 15) / 16), "flux L = ceil(H/16) ceil(W/16): %d", L);
            if (!ts) continue;
            sched_flux(got, n, L, shift, 0.5, 1.15);
            const double err = max_abs_diff(got, ts->data, n + 1);
            CHECK(t, err <= 2e-6, "flux %s %dx%d steps %d: off by %g", shift ? "dev" : "schnell", H, W, n, err);
            const cJSON *mu = cJSON_GetObjectItemCaseSensitive(it, "mu");
            if (cJSON_IsNumber(mu))
                CHECK(t, fabs(sched_flux_mu(L, 0.5, 1.15) - mu->valuedouble) < 1e-12, "mu for L=%d", L);
            n_flux++;
        }
    }
    CHECK(t, n_sd3 >= 10 && n_flux >= 20, "entries checked: sd3 %d flux %d", n_sd3, n_flux);
    printf("  %d SD3 and %d FLUX schedules within 2e-6\n", n_sd3, n_flux);
    st_close(f);
    cJSON_Delete(j);
}

static void t_known(tctx *t)
{
    float s[5];
    /* golden README section 8: shift 3, 4 steps -> 1, 0.857692, 0.602151, 0.008929, 0 */
    CHECK(t, sched_sd3(s, 4, 3.0f) == 0 && fabsf(s[0] - 1) < 1e-6f && fabsf(s[1] - 0.857692f) < 2e-6f &&
                 fabsf(s[2] - 0.602151f) < 2e-6f && fabsf(s[3] - 0.008929f) < 2e-6f && s[4] == 0,
          "sd3: %g %g %g %g %g", s[0], s[1], s[2], s[3], s[4]);
    CHECK(t, sched_flux(s, 4, 4096, 0, 0.5, 1.15) == 0 && s[0] == 1 && s[1] == 0.75f && s[2] == 0.5f && s[3] == 0.25f && s[4] == 0,
          "schnell is linear");
    CHECK(t, sched_sd3(s, 0, 3.0f) == -1 && sched_flux(s, 0, 10, 1, 0.5, 1.15) == -1 && sched_sd3(s, 2, -1) == -1, "bad n/shift");
    char err[128];
    float c[8];
    CHECK(t, sched_parse(c, 8, "1,0.5,0.2,0", err, sizeof err) == 4 && c[1] == 0.5f && c[3] == 0, "parse");
    CHECK(t, sched_parse(c, 8, "1,0.5,0.6,0", err, sizeof err) == -1 && strstr(err, "decrease"), "not decreasing: %s", err);
    CHECK(t, sched_parse(c, 8, "1,0.5", err, sizeof err) == -1 && strstr(err, "last one 0"), "no zero: %s", err);
    CHECK(t, sched_parse(c, 8, "1,x,0", err, sizeof err) == -1, "not a number");
    CHECK(t, sched_parse(c, 2, "1,0.5,0", err, sizeof err) == -1 && strstr(err, "more than"), "too many: %s", err);
}

int main(void)
{
    tctx t = test_begin("schedule");
    RUN(&t, t_golden);
    RUN(&t, t_known);
    return test_end(&t);
}
