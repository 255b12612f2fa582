/* pgstep's keepalive defaults on libpq's socket, set after connecting rather than passed as
 * connection keywords: keywords would override the same settings in a service file, which
 * libpq only uses for options still unset. */
#include "pgstep/keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

/* pgstep's own: probes after 10 s of silence, every 5 s, and data or probes left unanswered for
 * 30 s end the connection. A healthy server's kernel answers however long a statement runs. */
static const keepalive keepalive_defaults = {
    .idle_s = 10, .interval_s = 5, .count = 3, .user_timeout_ms = 30000};

/* The value of option keyword in the connection's options, or NULL when unset. */
static const char *keepalive_option(const PQconninfoOption *options, const char *keyword)
{
    for (const PQconninfoOption *o = options; o && o->keyword; o++) {
        if (strcmp(o->keyword, keyword) == 0)
            return o->val && o->val[0] ? o->val : NULL;
    }
    return NULL;
}

/* One setting: the connection's own value when it has one, else pgstep's, set on the socket. */
static int keepalive_setting(int fd, const PQconninfoOption *options, const char *keyword,
                             int option, int fallback)
{
    const char *own = keepalive_option(options, keyword);

    if (own)
        return atoi(own);
    if (setsockopt(fd, IPPROTO_TCP, option, &fallback, sizeof(fallback)) != 0)
        return 0;
    return fallback;
}

static bool keepalive_is_tcp(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);

    return getsockname(fd, (struct sockaddr *)&addr, &len) == 0 &&
           (addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
}

/* PQconninfo copies every option, the password among them: wiped before it is freed. */
static void keepalive_free_options(PQconninfoOption *options)
{
    for (PQconninfoOption *o = options; o->keyword; o++) {
        if (o->val && strcmp(o->keyword, "password") == 0)
            sodium_memzero(o->val, strlen(o->val));
    }
    PQconninfoFree(options);
}

keepalive keepalive_apply(PGconn *pg)
{
    keepalive in_effect = {0};
    int fd = PQsocket(pg);
    PQconninfoOption *options;
    const char *enabled;

    if (fd < 0 || !keepalive_is_tcp(fd) || !(options = PQconninfo(pg)))
        return in_effect;
    enabled = keepalive_option(options, "keepalives");
    if (!enabled || atoi(enabled) != 0) {
        in_effect.idle_s = keepalive_setting(fd, options, "keepalives_idle", TCP_KEEPIDLE,
                                             keepalive_defaults.idle_s);
        in_effect.interval_s = keepalive_setting(fd, options, "keepalives_interval", TCP_KEEPINTVL,
                                                 keepalive_defaults.interval_s);
        in_effect.count = keepalive_setting(fd, options, "keepalives_count", TCP_KEEPCNT,
                                            keepalive_defaults.count);
    }
    in_effect.user_timeout_ms = keepalive_setting(fd, options, "tcp_user_timeout", TCP_USER_TIMEOUT,
                                                  keepalive_defaults.user_timeout_ms);
    keepalive_free_options(options);
    return in_effect;
}
