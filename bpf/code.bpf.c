// SPDX-License-Identifier: GPL-2.0
/* Code loads: files mapped executable (shared objects, by ld.so or dlopen) and package files
 * opened (*.so*, *.jar, *.war, *.node, and *.py, *.pyc, *.js, *.mjs, *.cjs under site-packages,
 * dist-packages or node_modules) — per process, each file once (`seen`), which is what "is
 * this vulnerable package actually loaded" needs.
 *
 * Hooks: syscalls:sys_enter_mmap and sys_exit_openat{,2} (tp: needs tracefs), else
 * raw_tp/sys_enter and raw_tp/sys_exit (every syscall of the host: the last resort). The path
 * is rebuilt from the file's dentries and mounts (no bpf_d_path in tracepoints). */
#include "common.bpf.h"
#include "syscalls.bpf.h"

#define PROT_EXEC 4
#define MAP_ANONYMOUS 0x20
#define DEPTH_MAX 32
#define NAME_MAX_READ 256
#define LEAF_TAIL 16 /* bytes of a file name's end that classify it */

struct code_scratch {
        struct st_ev_code ev;
        char data[ST_CODE_PATH_MAX + NAME_MAX_READ];
        char leaf[2 * LEAF_TAIL];
};

struct {
        __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
        __uint(max_entries, 1);
        __type(key, __u32);
        __type(value, struct code_scratch);
} code_buf SEC(".maps");

struct seen_key {
        __u32 pid;
        __u32 dev;
        __u64 start_ns;
        __u64 exec_id; /* self_exec_id: a new image reports its loads again */
        __u64 inode;
        __u32 kind;    /* a library is reported opened and mapped: once each */
        __u32 _pad;
};

struct {
        __uint(type, BPF_MAP_TYPE_LRU_HASH);
        __uint(max_entries, 65536);
        __type(key, struct seen_key);
        __type(value, __u8);
} seen SEC(".maps");

enum leaf_class { LEAF_NO = 0, LEAF_ALWAYS = 1, LEAF_IN_PACKAGE = 2 };

/* The leaf name's last LEAF_TAIL bytes are enough to classify it: a suffix, or a ".so" with a
 * version after it. Reading and scanning only those keeps the filter — which every open on the
 * host pays — to one probe read and a short loop. */

static __always_inline bool ends_with(const char *t, __u32 n, const char *suffix, __u32 k) {
        /* t holds the last n (<= LEAF_TAIL) bytes of the name */
        if (n < k)
                return false;
        for (__u32 i = 0; i < k; i++)
                if (t[(n - k + i) & (LEAF_TAIL - 1)] != suffix[i])
                        return false;
        return true;
}

/* What an opened file's name says about it; t: its last n bytes. */
static __always_inline int classify_leaf(const char *t, __u32 n) {
        for (__u32 i = 0; i + 3 <= LEAF_TAIL; i++) {
                if (i + 3 > n)
                        break;
                /* t has 2 * LEAF_TAIL bytes: t[i + 4] is always inside it */
                if (t[i] == '.' && t[i + 1] == 's' && t[i + 2] == 'o' &&
                    (i + 3 == n || (t[i + 3] == '.' && i + 4 < n && t[i + 4] >= '0' && t[i + 4] <= '9')))
                        return LEAF_ALWAYS; /* libx.so, libx.so.1.2; not ld.so.cache */
        }
        if (ends_with(t, n, ".jar", 4) || ends_with(t, n, ".war", 4) || ends_with(t, n, ".node", 5))
                return LEAF_ALWAYS;
        if (ends_with(t, n, ".py", 3) || ends_with(t, n, ".pyc", 4) || ends_with(t, n, ".js", 3) ||
            ends_with(t, n, ".mjs", 4) || ends_with(t, n, ".cjs", 4))
                return LEAF_IN_PACKAGE;
        return LEAF_NO;
}

/* Whether a path component (n bytes with its NUL) is a package directory. Branch-free byte
 * compares: a branch per byte would give the verifier 2^26 paths to walk. */
static __always_inline bool is_package_dir(const char *c, long n) {
        const char *site = "site-packages", *dist = "dist-packages", *node = "node_modules";
        __u8 d_site = 0, d_dist = 0, d_node = 0;
        if (n != 13 && n != 14)
                return false;
        for (int i = 0; i < 13; i++) {
                d_site |= c[i] ^ site[i];
                d_dist |= c[i] ^ dist[i];
        }
        for (int i = 0; i < 12; i++)
                d_node |= c[i] ^ node[i];
        return n == 14 ? (d_site == 0) | (d_dist == 0) : d_node == 0;
}

/* One step of the path walk, as a bpf_loop() callback: the verifier checks it once, where an
 * unrolled walk with a mount hop per step is a tree of paths it cannot finish. */
struct walk {
        struct dentry *d;
        struct mount *mnt;
        __u32 off;
        bool in_package, done; /* done: the walk reached the root */
};

static long walk_step(__u32 i, void *ctx) {
        struct walk *w = ctx;
        __u32 zero = 0;
        struct code_scratch *s = bpf_map_lookup_elem(&code_buf, &zero);
        if (!s)
                return 1;
        /* local copies: BPF_CORE_READ relocates every step, and struct walk is not the kernel's */
        struct dentry *d = w->d;
        struct mount *mnt = w->mnt;
        struct dentry *mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
        if (d == mnt_root) {
                struct mount *parent = BPF_CORE_READ(mnt, mnt_parent);
                if (parent == mnt) {
                        w->done = true; /* the root of the mount tree */
                        return 1;
                }
                w->d = BPF_CORE_READ(mnt, mnt_mountpoint);
                w->mnt = parent;
                return 0;
        }
        if (w->off > ST_CODE_PATH_MAX - NAME_MAX_READ)
                return 1; /* not done: truncated */
        char *at = s->data + (w->off & (ST_CODE_PATH_MAX - 1));
        long n = bpf_probe_read_kernel_str(at, NAME_MAX_READ, BPF_CORE_READ(d, d_name.name));
        if (n <= 0)
                return 1;
        if (i > 0 && is_package_dir(at, n))
                w->in_package = true;
        struct dentry *up = BPF_CORE_READ(d, d_parent);
        if (up == d) {
                /* a disconnected dentry (memfd, an anonymous file): its name is all there is */
                w->off += (__u32) n;
                w->done = true;
                return 1;
        }
        w->off += (__u32) n;
        w->d = up;
        return 0;
}

/* btf: the current task is BTF-typed; cast (implies btf): the dentry and inode too, through
 * bpf_rdonly_cast (st_cast), where the others take a probe read for each. The path walk and
 * the file's f_path stay probe reads: their pointers are compared and carried across
 * bpf_loop() steps as plain values. */
static __always_inline int emit_file(struct file *f, __u8 kind, bool filter_leaf, bool btf, bool cast) {
        __u32 zero = 0;
        struct code_scratch *s;
        __u64 now;

        if (!f)
                return 0;
        int leaf = LEAF_ALWAYS;
        if (filter_leaf && cast) {
                /* Most opens are of files we drop: classify the name before any other read, with
                 * the dentry and the name's tail through BTF (below), into the stack. */
                struct dentry *dc = st_cast(f, struct file)->f_path.dentry;
                if (!dc)
                        return 0;
                char t[2 * LEAF_TAIL] = {};
                __u32 len = dc->d_name.len;
                const unsigned char *name = dc->d_name.name;
                if (!len)
                        return 0;
                __u32 n = len < LEAF_TAIL ? len : LEAF_TAIL;
                /* The tail's 16 bytes through a 16-byte kernel type, as plain loads (a byte
                 * past a page's end would read as 0): no helper call. */
                const struct in6_addr *tail = st_cast(name + len - n, struct in6_addr);
                __builtin_memcpy(t, tail->in6_u.u6_addr8, LEAF_TAIL);
                leaf = classify_leaf(t, n);
                if (leaf == LEAF_NO)
                        return 0;
                filter_leaf = false;
        }
        /* the mount and the dentry in one read; the inode only for files that pass the filter */
        struct path fp;
        if (bpf_core_read(&fp, sizeof(fp), &f->f_path) < 0)
                return 0;
        struct dentry *d = fp.dentry;
        struct vfsmount *vm = fp.mnt;
        if (!d || !vm)
                return 0;
        s = bpf_map_lookup_elem(&code_buf, &zero);
        if (!s)
                return 0;

        if (filter_leaf) {
                struct qstr q;
                if (bpf_probe_read_kernel(&q, sizeof(q), &d->d_name) < 0 || !q.len)
                        return 0;
                __u32 n = q.len < LEAF_TAIL ? q.len : LEAF_TAIL;
                if (bpf_probe_read_kernel(s->leaf, n & (LEAF_TAIL - 1 + LEAF_TAIL), q.name + q.len - n) < 0)
                        return 0;
                leaf = classify_leaf(s->leaf, n);
                if (leaf == LEAF_NO)
                        return 0;
        }
        if (!st_wanted())
                return 0;
        struct seen_key key = { .kind = kind };
        if (cast) {
                struct inode *ino = st_cast(d, struct dentry)->d_inode;
                if (!ino)
                        return 0;
                key.dev = ino->i_sb->s_dev;
                key.inode = ino->i_ino;
        } else {
                struct inode *ino = BPF_CORE_READ(d, d_inode);
                if (!ino)
                        return 0;
                key.dev = BPF_CORE_READ(ino, i_sb, s_dev);
                key.inode = BPF_CORE_READ(ino, i_ino);
        }
        if (btf) {
                struct task_struct *t = bpf_get_current_task_btf();
                key.pid = t->tgid;
                key.start_ns = t->group_leader->start_boottime;
                key.exec_id = t->self_exec_id;
        } else {
                struct task_struct *task = (struct task_struct *) bpf_get_current_task();
                key.pid = bpf_get_current_pid_tgid() >> 32;
                key.start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
                key.exec_id = BPF_CORE_READ(task, self_exec_id);
        }
        if (bpf_map_lookup_elem(&seen, &key))
                return 0;

        /* the path, leaf first: dentry by dentry, hopping to the parent mount at a mount's root */
        struct walk w = { .d = d, .mnt = container_of(vm, struct mount, mnt) };
        bpf_loop(DEPTH_MAX, walk_step, &w, 0);
        __u32 off = w.off;
        bool in_package = w.in_package, truncated = !w.done;
        if (leaf == LEAF_IN_PACKAGE && !in_package)
                return 0;

        __u8 one = 1;
        bpf_map_update_elem(&seen, &key, &one, BPF_ANY);
        now = bpf_ktime_get_boot_ns();
        off &= ST_CODE_PATH_MAX - 1 + ST_CODE_PATH_MAX; /* bounded for the verifier */
        if (off > ST_CODE_PATH_MAX)
                off = ST_CODE_PATH_MAX;
        __u64 size = sizeof(s->ev) + off;
        st_fill_header_x(&s->ev.h, ST_EV_CODE, (__u16) size, now, btf);
        s->ev.kind = kind;
        s->ev.path_truncated = truncated;
        s->ev.path_len = (__u16) off;
        s->ev.inode = key.inode;
        s->ev.dev = key.dev;
        s->ev._pad = 0;
        s->ev._pad2 = 0;
        if (size <= sizeof(s->ev) + ST_CODE_PATH_MAX)
                st_emit(s, size, now);
        return 0;
}

/* cast: the tp+cast program (the task, the file's dentry and inode through BTF) */
static __always_inline int on_mmap(unsigned long prot, unsigned long flags, unsigned long fd, bool cast) {
        if (!(prot & PROT_EXEC) || (flags & MAP_ANONYMOUS))
                return 0; /* the kernel ignores fd for anonymous mappings */
        /* the kernel uses the low 32 bits (fget(unsigned int)): so must we, or a fd with high
         * bits set would hide a mapping */
        return emit_file(st_fd_file_x((long) (__u32) fd, cast), ST_CODE_MMAP_EXEC, false, cast, cast);
}

static __always_inline int on_open(long fd, bool btf, bool cast) {
        if (fd < 0)
                return 0;
        return emit_file(st_fd_file_x(fd, btf), ST_CODE_OPEN, true, btf, cast);
}

SEC("tp/syscalls/sys_enter_mmap")
int mmap_tp_cast(struct trace_event_raw_sys_enter *ctx) { return on_mmap(ctx->args[2], ctx->args[3], ctx->args[4], true); }
SEC("tp/syscalls/sys_enter_mmap")
int mmap_tp(struct trace_event_raw_sys_enter *ctx) { return on_mmap(ctx->args[2], ctx->args[3], ctx->args[4], false); }

SEC("raw_tp/sys_enter")
int BPF_PROG(mmap_raw, struct pt_regs *regs, long nr) {
        if (nr != ST_NR_MMAP || st_compat_syscall())
                return 0;
        return on_mmap(PT_REGS_PARM3_CORE_SYSCALL(regs), PT_REGS_PARM4_CORE_SYSCALL(regs),
                       PT_REGS_PARM5_CORE_SYSCALL(regs), false);
}

/* tp+cast: the fd table through the BTF-typed current task, the file's dentry and inode
 * through bpf_rdonly_cast (6.2+); tp+btf: the fd table only; tp: all through probe reads */
SEC("tp/syscalls/sys_exit_openat")
int openat_tp_cast(struct trace_event_raw_sys_exit *ctx) { return on_open(ctx->ret, true, true); }
SEC("tp/syscalls/sys_exit_openat2")
int openat2_tp_cast(struct trace_event_raw_sys_exit *ctx) { return on_open(ctx->ret, true, true); }
SEC("tp/syscalls/sys_exit_openat")
int openat_tp_btf(struct trace_event_raw_sys_exit *ctx) { return on_open(ctx->ret, true, false); }
SEC("tp/syscalls/sys_exit_openat2")
int openat2_tp_btf(struct trace_event_raw_sys_exit *ctx) { return on_open(ctx->ret, true, false); }
SEC("tp/syscalls/sys_exit_openat")
int openat_tp(struct trace_event_raw_sys_exit *ctx) { return on_open(ctx->ret, false, false); }
SEC("tp/syscalls/sys_exit_openat2")
int openat2_tp(struct trace_event_raw_sys_exit *ctx) { return on_open(ctx->ret, false, false); }

SEC("raw_tp/sys_exit")
int BPF_PROG(open_raw, struct pt_regs *regs, long ret) {
        if (st_compat_syscall())
                return 0;
        long nr = st_syscall_nr(regs);
        if (nr != ST_NR_OPENAT && nr != ST_NR_OPENAT2)
                return 0;
        return on_open(ret, false, false);
}
