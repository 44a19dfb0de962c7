#include "wire.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_LEN = 2, WT_FIXED32 = 5 };

/* protobuf-c reads a value varint in at most 10 bytes, a tag or a length prefix in at most 5
 * (and refuses longer, zero-padded ones): so do we, or we would pass what it then refuses. */
#define VARINT_MAX 10
#define HEADER_VARINT_MAX 5

static inline bool read_varint(const uint8_t **p, const uint8_t *end, unsigned max_bytes, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned i = 0; i < max_bytes && *p < end; i++) {
                uint8_t c = *(*p)++;
                v |= (uint64_t) (c & 0x7f) << (7 * i);
                if (!(c & 0x80)) {
                        *ret = v;
                        return true;
                }
        }
        return false;
}

/* One field's header and where its payload is: varints are skipped, fixed and
 * length-delimited payloads are bounds-checked. */
struct wire_field {
        uint32_t num;
        unsigned wt;
        const uint8_t *payload;
        size_t len;
};

static inline bool next_field(const uint8_t **p, const uint8_t *end, struct wire_field *f) {
        uint64_t tag, v;
        if (!read_varint(p, end, HEADER_VARINT_MAX, &tag) || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
                return false;
        f->num = (uint32_t) (tag >> 3);
        f->wt = (unsigned) (tag & 7);
        f->payload = *p;
        switch (f->wt) {
        case WT_VARINT:
                if (!read_varint(p, end, VARINT_MAX, &v))
                        return false;
                f->len = (size_t) (*p - f->payload);
                return true;
        case WT_FIXED64:
        case WT_FIXED32: {
                size_t n = f->wt == WT_FIXED64 ? 8 : 4;
                if ((size_t) (end - *p) < n)
                        return false;
                *p += n;
                f->len = n;
                return true;
        }
        case WT_LEN:
                if (!read_varint(p, end, HEADER_VARINT_MAX, &v) || v > (uint64_t) (end - *p) || v > INT_MAX)
                        return false; /* protobuf-c refuses lengths above INT_MAX too */
                f->payload = *p;
                f->len = (size_t) v;
                *p += v;
                return true;
        default:
                return false; /* groups and reserved wire types: protobuf-c refuses them too */
        }
}

static bool is_varint_type(ProtobufCType t) {
        switch (t) {
        case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_BOOL: case PROTOBUF_C_TYPE_ENUM:
                return true;
        default:
                return false;
        }
}

static unsigned fixed_size(ProtobufCType t) {
        switch (t) {
        case PROTOBUF_C_TYPE_SFIXED32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_FLOAT:
                return 4;
        case PROTOBUF_C_TYPE_SFIXED64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
                return 8;
        default:
                return 0;
        }
}

/* --- check plans ------------------------------------------------------------------------------
 * What the check needs of a field, flattened from protobuf-c's descriptors into a table indexed
 * by field number: protobuf_c_message_descriptor_get_field() (a binary search over ranges) and
 * the type switches were a third of the pass-through CPU. Plans are built once per message
 * type, on first use, for the whole tree of types reachable from it (OTLP's AnyValue makes it
 * a graph), and published on a lock-free list so that checks never take a lock. */

#define PLAN_DIRECT 32 /* field numbers below this have a table slot; OTLP's all do */

enum field_kind { FK_UNKNOWN = 0, FK_VARINT, FK_FIXED32, FK_FIXED64, FK_BYTES, FK_MESSAGE };

struct field_plan {
        uint8_t kind;          /* enum field_kind */
        bool repeated;
        int16_t singular_msg;  /* index in the descriptor's fields of a singular, non-oneof
                                * message field (protobuf-c merges repeats of it); else -1 */
        const struct msg_plan *sub;
};

/* What the check does with a field, decided by its tag (number and wire type) alone. */
enum field_op {
        OP_BAD = 0,        /* the wire type does not fit the field, or field number 0 */
        OP_VARINT,
        OP_FIXED32,
        OP_FIXED64,
        OP_SKIP,           /* length-delimited, not looked into: string, bytes, unknown field */
        OP_MESSAGE,
        OP_PACKED_VARINT,  /* length-delimited: must hold whole varints */
        OP_PACKED_FIXED32, /* ... a multiple of 4 bytes */
        OP_PACKED_FIXED64, /* ... a multiple of 8 bytes */
};

#define ONE_BYTE_TAGS 128 /* tags of field numbers 1..15: all but a few of OTLP's */

struct msg_plan {
        const ProtobufCMessageDescriptor *desc;
        uint8_t op[ONE_BYTE_TAGS]; /* enum field_op, by one-byte tag */
        struct field_plan direct[PLAN_DIRECT];
        struct field_plan *by_index; /* all fields, in desc->fields order, for numbers >= PLAN_DIRECT */
        struct msg_plan *next;
};

static _Atomic(struct msg_plan *) plans;
static pthread_mutex_t plans_lock = PTHREAD_MUTEX_INITIALIZER;

static struct msg_plan *plan_find(struct msg_plan *head, const ProtobufCMessageDescriptor *desc) {
        for (struct msg_plan *m = head; m; m = m->next)
                if (m->desc == desc)
                        return m;
        return NULL;
}

static void plan_free_list(struct msg_plan *m) {
        while (m) {
                struct msg_plan *next = m->next;
                free(m->by_index);
                free(m);
                m = next;
        }
}

/* Adds plans for desc and every message type under it that neither *published nor *building
 * has; sub pointers are filled by plan_link() once all exist. */
static int plan_collect(const ProtobufCMessageDescriptor *desc, struct msg_plan *published, struct msg_plan **building) {
        if (plan_find(published, desc) || plan_find(*building, desc))
                return 0;
        struct msg_plan *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->desc = desc;
        m->by_index = calloc(desc->n_fields ? desc->n_fields : 1, sizeof(*m->by_index));
        m->next = *building;
        *building = m;
        if (!m->by_index)
                return -ENOMEM;
        for (unsigned i = 0; i < desc->n_fields; i++) {
                const ProtobufCFieldDescriptor *fd = &desc->fields[i];
                struct field_plan *fp = &m->by_index[i];
                fp->repeated = fd->label == PROTOBUF_C_LABEL_REPEATED;
                fp->singular_msg = -1;
                unsigned fs = fixed_size(fd->type);
                if (is_varint_type(fd->type))
                        fp->kind = FK_VARINT;
                else if (fs)
                        fp->kind = fs == 4 ? FK_FIXED32 : FK_FIXED64;
                else if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
                        fp->kind = FK_MESSAGE;
                        if (!fp->repeated && !(fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
                                fp->singular_msg = (int16_t) (i < INT16_MAX ? i : INT16_MAX);
                        int r = plan_collect(fd->descriptor, published, building);
                        if (r < 0)
                                return r;
                } else
                        fp->kind = FK_BYTES; /* string, bytes */
        }
        return 0;
}

static enum field_op op_for(const struct field_plan *fp, unsigned wt) {
        enum field_kind kind = fp ? (enum field_kind) fp->kind : FK_UNKNOWN;
        bool repeated = fp && fp->repeated;
        switch (wt) {
        case WT_VARINT:
                return kind == FK_VARINT || kind == FK_UNKNOWN ? OP_VARINT : OP_BAD;
        case WT_FIXED32:
                return kind == FK_FIXED32 || kind == FK_UNKNOWN ? OP_FIXED32 : OP_BAD;
        case WT_FIXED64:
                return kind == FK_FIXED64 || kind == FK_UNKNOWN ? OP_FIXED64 : OP_BAD;
        case WT_LEN:
                switch (kind) {
                case FK_UNKNOWN: /* unknown fields are kept by protobuf-c, skipped by us */
                case FK_BYTES:
                        return OP_SKIP;
                case FK_MESSAGE:
                        return OP_MESSAGE;
                case FK_VARINT:
                        return repeated ? OP_PACKED_VARINT : OP_BAD;
                case FK_FIXED32:
                        return repeated ? OP_PACKED_FIXED32 : OP_BAD;
                case FK_FIXED64:
                        return repeated ? OP_PACKED_FIXED64 : OP_BAD;
                }
                return OP_BAD;
        default:
                return OP_BAD; /* groups and reserved wire types: protobuf-c refuses them too */
        }
}

static void plan_link(struct msg_plan *building, struct msg_plan *published) {
        for (struct msg_plan *m = building; m; m = m->next) {
                for (unsigned i = 0; i < m->desc->n_fields; i++) {
                        const ProtobufCFieldDescriptor *fd = &m->desc->fields[i];
                        struct field_plan *fp = &m->by_index[i];
                        if (fp->kind == FK_MESSAGE) {
                                fp->sub = plan_find(building, fd->descriptor);
                                if (!fp->sub)
                                        fp->sub = plan_find(published, fd->descriptor);
                        }
                        if (fd->id < PLAN_DIRECT)
                                m->direct[fd->id] = *fp;
                }
                for (unsigned t = 0; t < ONE_BYTE_TAGS; t++)
                        m->op[t] = (uint8_t) (t >> 3 ? op_for(&m->direct[t >> 3], t & 7) : OP_BAD);
        }
}

static const struct msg_plan *plan_get(const ProtobufCMessageDescriptor *desc) {
        struct msg_plan *m = plan_find(atomic_load_explicit(&plans, memory_order_acquire), desc);
        if (m)
                return m;
        pthread_mutex_lock(&plans_lock);
        struct msg_plan *published = atomic_load_explicit(&plans, memory_order_relaxed), *building = NULL;
        m = plan_find(published, desc);
        if (!m) {
                if (plan_collect(desc, published, &building) < 0) {
                        plan_free_list(building);
                } else {
                        plan_link(building, published);
                        m = plan_find(building, desc);
                        struct msg_plan *tail = building;
                        while (tail->next)
                                tail = tail->next;
                        tail->next = published;
                        atomic_store_explicit(&plans, building, memory_order_release);
                }
        }
        pthread_mutex_unlock(&plans_lock);
        return m;
}

static const struct field_plan *plan_field(const struct msg_plan *m, uint32_t num) {
        if (num < PLAN_DIRECT)
                return &m->direct[num];
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(m->desc, num);
        return fd ? &m->by_index[fd - m->desc->fields] : NULL;
}

/* A varint value is skipped, not computed: its end is all the check needs. */
static inline bool skip_varint(const uint8_t **p, const uint8_t *end) {
        const uint8_t *q = *p;
        size_t n = (size_t) (end - q) < VARINT_MAX ? (size_t) (end - q) : VARINT_MAX;
        for (size_t i = 0; i < n; i++)
                if (!(q[i] & 0x80)) {
                        *p = q + i + 1;
                        return true;
                }
        return false;
}

/* A tag or a length prefix: one byte for every OTLP tag and for most lengths, so that byte
 * is read inline and only longer ones take the loop. */
static inline bool read_header(const uint8_t **p, const uint8_t *end, uint64_t max, uint64_t *ret) {
        if (**p < 0x80) {
                *ret = *(*p)++;
                return true;
        }
        return read_varint(p, end, HEADER_VARINT_MAX, ret) && *ret <= max;
}

/* Decides what next_field() and the plan decide, in one pass over the whole tree: this loop
 * is most of what the pass-through path costs per span. A one-byte tag is looked up in the
 * message's op table, which has the field's kind and the wire type already matched; nested
 * messages go on an explicit stack rather than the C stack, since most of OTLP's are a few
 * bytes (an attribute is a KeyValue holding an AnyValue holding one field). *merges is set
 * when a singular message field appears twice: see st_wire_check(). */
static bool check_tree(const struct msg_plan *m, const uint8_t *p, size_t len, bool *merges) {
        struct frame {
                const struct msg_plan *m;
                const uint8_t *end;
                uint64_t seen;
        } stack[ST_WIRE_MAX_DEPTH];
        unsigned depth = 0;
        const uint8_t *end = p + len;
        uint64_t seen = 0; /* singular message fields met, by index in the descriptor's fields */

        for (;;) {
                while (p < end) {
                        const struct field_plan *fp;
                        enum field_op op;
                        if (*p < ONE_BYTE_TAGS) {
                                op = (enum field_op) m->op[*p];
                                fp = &m->direct[*p >> 3];
                                p++;
                        } else {
                                uint64_t tag;
                                if (!read_varint(&p, end, HEADER_VARINT_MAX, &tag) || tag > UINT32_MAX || tag >> 3 == 0)
                                        return false;
                                fp = plan_field(m, (uint32_t) (tag >> 3));
                                op = op_for(fp, (unsigned) (tag & 7));
                        }
                        switch (op) {
                        case OP_BAD:
                                return false;
                        case OP_VARINT:
                                if (!skip_varint(&p, end))
                                        return false;
                                continue;
                        case OP_FIXED32:
                        case OP_FIXED64: {
                                size_t fs = op == OP_FIXED64 ? 8 : 4;
                                if ((size_t) (end - p) < fs)
                                        return false;
                                p += fs;
                                continue;
                        }
                        default:
                                break;
                        }
                        /* length-delimited; protobuf-c refuses lengths above INT_MAX too */
                        uint64_t n;
                        if (p >= end || !read_header(&p, end, INT_MAX, &n) || n > (uint64_t) (end - p))
                                return false;
                        const uint8_t *payload = p;
                        p += n;
                        switch (op) {
                        case OP_MESSAGE:
                                if (fp->singular_msg >= 0) {
                                        uint64_t bit = fp->singular_msg < 64 ? UINT64_C(1) << fp->singular_msg : 0;
                                        if (!bit || (seen & bit))
                                                *merges = true;
                                        seen |= bit;
                                }
                                if (depth == ST_WIRE_MAX_DEPTH)
                                        return false;
                                stack[depth++] = (struct frame) { m, end, seen };
                                /* the parent goes on where this payload ends: at p, then */
                                m = fp->sub;
                                end = p;
                                p = payload;
                                seen = 0;
                                continue;
                        case OP_PACKED_VARINT:
                                while (payload < p)
                                        if (!skip_varint(&payload, p))
                                                return false;
                                continue;
                        case OP_PACKED_FIXED32:
                                if (n % 4)
                                        return false;
                                continue;
                        case OP_PACKED_FIXED64:
                                if (n % 8)
                                        return false;
                                continue;
                        default: /* OP_SKIP */
                                continue;
                        }
                }
                if (!depth)
                        return true;
                depth--;
                m = stack[depth].m;
                end = stack[depth].end;
                seen = stack[depth].seen;
        }
}

int st_wire_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len) {
        const struct msg_plan *m = plan_get(desc);
        bool merges = false;
        if (!m)
                return -ENOMEM;
        if (!check_tree(m, data, len, &merges))
                return -EBADMSG;
        /* protobuf-c merges a singular message field given twice, and cannot merge everything
         * (1.4.1 refuses two messages that both leave a oneof unset: a log body or an attribute
         * value given twice, empty). Senders never do this; when one does, protobuf-c judges. */
        if (merges) {
                ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL, len, data);
                if (!msg)
                        return -EBADMSG;
                protobuf_c_message_free_unpacked(msg, NULL);
        }
        return 0;
}

/* The field number of the struct member at offset in desc. */
static uint32_t field_at(const ProtobufCMessageDescriptor *desc, size_t offset) {
        for (unsigned i = 0; i < desc->n_fields; i++)
                if (desc->fields[i].offset == offset)
                        return desc->fields[i].id;
        return 0;
}

/* Counts the repeated field `num` in a message. */
static size_t count_field(const uint8_t *p, size_t len, uint32_t num) {
        const uint8_t *end = p + len;
        struct wire_field f;
        size_t n = 0;
        while (p < end && next_field(&p, end, &f))
                n += f.num == num;
        return n;
}

/* Metric: its data (gauge, sum, histogram, exponential_histogram, summary) holds the points
 * in its field 1 (data_points) in every kind. The data is a oneof: when it appears more than
 * once, protobuf-c keeps the last one only (it frees the earlier one, even of the same kind,
 * rather than merging), so only the last one counts. */
static size_t metric_points(const uint8_t *p, size_t len) {
        const uint8_t *end = p + len;
        struct wire_field f;
        size_t n = 0;
        while (p < end && next_field(&p, end, &f)) {
                if (f.wt != WT_LEN)
                        continue;
                const ProtobufCFieldDescriptor *fd =
                        protobuf_c_message_descriptor_get_field(&opentelemetry__proto__metrics__v1__metric__descriptor, f.num);
                if (fd && fd->type == PROTOBUF_C_TYPE_MESSAGE && fd->quantifier_offset ==
                                                                       offsetof(st_metric, data_case))
                        n = count_field(f.payload, f.len, 1);
        }
        return n;
}

size_t st_wire_items(enum st_signal s, const uint8_t *data, size_t len) {
        const struct st_signal_layout *L = &st_signals[s];
        uint32_t req_f = field_at(L->req, L->req_v), res_f = field_at(L->resource_entry, L->res_v),
                 scope_f = field_at(L->scope_entry, L->scope_v);
        const uint8_t *p = data, *end = data + len;
        struct wire_field fr, fs, fi;
        size_t n = 0;

        while (p < end && next_field(&p, end, &fr)) {
                if (fr.num != req_f || fr.wt != WT_LEN)
                        continue;
                const uint8_t *q = fr.payload, *qe = fr.payload + fr.len;
                while (q < qe && next_field(&q, qe, &fs)) {
                        if (fs.num != res_f || fs.wt != WT_LEN)
                                continue;
                        if (s != ST_METRICS) {
                                n += count_field(fs.payload, fs.len, scope_f);
                                continue;
                        }
                        const uint8_t *r = fs.payload, *re = fs.payload + fs.len;
                        while (r < re && next_field(&r, re, &fi))
                                if (fi.num == scope_f && fi.wt == WT_LEN)
                                        n += metric_points(fi.payload, fi.len);
                }
        }
        return n;
}
