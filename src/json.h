#ifndef ALERT_EXEC_JSON_H
#define ALERT_EXEC_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

/*
 * The JSON text of the server's bodies, byte by byte: what cJSON does not
 * check (strict UTF-8, raw control bytes, \u0000), and a walk over a
 * large array that gives cJSON one element at a time. Pure: no I/O, no
 * allocation but json_copy's and cJSON's trees.
 */

/* "an object", "an array", "a string", "a number", "a boolean", "null",
 * or "invalid": the type of j for messages ("it is an object"). */
const char *json_type(const cJSON *j);

/* Whether the NUL-terminated s is strict UTF-8: no overlong forms,
 * surrogates or code points over U+10FFFF. The strings are sent back to
 * the server in JSON and stored. */
int json_utf8_valid(const char *s);

/* Whether s holds a byte below 0x20 or DEL. */
int json_has_control(const char *s);

/* The first raw byte below 0x20 inside a string of the JSON text
 * b[0..len), or -1 when there is none. RFC 8259 forbids them, but cJSON
 * copies them into the string: a raw NUL would end the C string there
 * and "alert-x<NUL>evil" would read as alert-x. */
int json_raw_control(const char *b, size_t len);

/* Whether a JSON text holds the escape \u0000 inside a string. cJSON
 * decodes it to a NUL byte, which would silently cut a string short. */
int json_has_nul_escape(const char *b, size_t len);

/* Writes a short, quoted start of body into out, for error messages.
 * Returns out. */
const char *json_snippet(char *out, size_t outlen, const char *body, size_t len);

/* A malloc'd copy of body[0..len) with a NUL after it (the parsers need
 * one, see json_parse), or NULL when out of memory. */
char *json_copy(const char *body, size_t len);

/* Parses body[0..len) as one JSON value with nothing but whitespace after
 * it. body[len] must be '\0': cJSON before 1.7.16 reads one byte past
 * the given length on a string that ends in a backslash (CVE-2023-53154;
 * Debian patched it, other builds may not have). Returns the tree (free
 * with cJSON_Delete), or NULL with a bare reason in why (why != NULL,
 * whylen > 0): "body is empty", "body is not JSON (starts with ...)",
 * "body is not JSON (a string holds the raw control byte 0x00)". (cJSON
 * does not tell running out of memory from bad input: both read "not
 * JSON".) */
cJSON *json_parse(const char *body, size_t len, char *why, size_t whylen);

/*
 * A large array, one element at a time: a cJSON tree of a whole /alerts
 * body takes about seven times the body's size (some 150 MB for 100 000
 * alerts), one element's tree a few hundred bytes. The array's own syntax
 * is checked here the way cJSON checks it; each element is parsed by
 * cJSON.
 */

/* Index just after the '[' that opens body as a JSON array (after a
 * UTF-8 BOM and whitespace, as cJSON skips them), or 0 when the body does
 * not start as an array. */
size_t json_array_start(const char *body, size_t len);

/* Called on each element: its tree and its text raw[0..rawlen). */
typedef int (*json_element_fn)(const cJSON *item, const char *raw, size_t rawlen, void *arg);

/* Parses the elements of the array whose '[' ends at body[open - 1]
 * (json_array_start) and calls fn on each, in order; stops early when fn
 * returns non-zero. Returns 0, fn's non-zero result, or -1 when the body
 * is not JSON (an element, a separator, or what follows the ']' is wrong;
 * only JSON whitespace may follow the array, as json_parse allows).
 * body[len] must be '\0'. */
int json_for_each_element(const char *body, size_t len, size_t open, json_element_fn fn, void *arg);

#endif
