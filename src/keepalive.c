/* pgstep's keepalive defaults: passed to libpq as keywords, so that a cancel request's
 * connection, which libpq makes with the connection's keywords, gives up as soon as the
 * connection does; set on the socket after connecting only when a service file is in play. */
#include "pgstep/keepalive.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "pgstep/secret.h"

/* pgstep's own: probes after 10 s of silence, every 5 s, and data or probes left unanswered for
 * 30 s end the connection. A healthy server's kernel answers however long a statement runs. */
static const struct {
    const char *keyword;
    int socket_option;
    const char *value;
} keepalive_defaults[KEEPALIVE_SETTINGS] = {
    {"keepalives_idle", TCP_KEEPIDLE, "10"},
    {"keepalives_interval", TCP_KEEPINTVL, "5"},
    {"keepalives_count", TCP_KEEPCNT, "3"},
    {"tcp_user_timeout", TCP_USER_TIMEOUT, "30000"},
};

/* The value of option keyword, or NULL when unset. */
static const char *keepalive_option(const PQconninfoOption *options, const char *keyword)
{
    for (const PQconninfoOption *o = options; o && o->keyword; o++) {
        if (strcmp(o->keyword, keyword) == 0)
            return o->val && o->val[0] ? o->val : NULL;
    }
    return NULL;
}

bool keepalive_uses_service(const PQconninfoOption *options)
{
    const char *env = getenv("PGSERVICE");

    return (env && env[0]) || keepalive_option(options, "service") != NULL;
}

int keepalive_keywords(const char *keywords[KEEPALIVE_SETTINGS],
                       const char *values[KEEPALIVE_SETTINGS])
{
    for (int i = 0; i < KEEPALIVE_SETTINGS; i++) {
        keywords[i] = keepalive_defaults[i].keyword;
        values[i] = keepalive_defaults[i].value;
    }
    return KEEPALIVE_SETTINGS;
}

static bool keepalive_is_tcp(int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);

    return getsockname(fd, (struct sockaddr *)&addr, &len) == 0 &&
           (addr.ss_family == AF_INET || addr.ss_family == AF_INET6);
}

keepalive keepalive_apply(PGconn *pg)
{
    keepalive in_effect = {{0}};
    int fd = PQsocket(pg);
    PQconninfoOption *options;
    const char *enabled;

    if (fd < 0 || !keepalive_is_tcp(fd) || !(options = PQconninfo(pg)))
        return in_effect;
    enabled = keepalive_option(options, "keepalives");
    for (int i = 0; i < KEEPALIVE_SETTINGS; i++) {
        const char *own = keepalive_option(options, keepalive_defaults[i].keyword);
        int fallback = atoi(keepalive_defaults[i].value);
        bool probe = keepalive_defaults[i].socket_option != TCP_USER_TIMEOUT;

        if (probe && enabled && atoi(enabled) == 0)
            continue;
        if (own)
            in_effect.value[i] = atoi(own);
        else if (setsockopt(fd, IPPROTO_TCP, keepalive_defaults[i].socket_option, &fallback,
                            sizeof(fallback)) == 0)
            in_effect.value[i] = fallback;
    }
    secret_free_options(options);
    return in_effect;
}
