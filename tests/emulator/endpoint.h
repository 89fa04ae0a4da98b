/* endpoint: the request classes the emulator counts, fails and logs. */
#ifndef EMU_ENDPOINT_H
#define EMU_ENDPOINT_H

enum endpoint {
	EP_ALERTS,
	EP_QUERY,
	EP_NOTIFY,
	EP_RESOLVE,
	EP_STATS,
	EP_OTHER, /* unknown paths */
	EP_COUNT
};

#endif
