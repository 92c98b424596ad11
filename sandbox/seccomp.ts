/**
 * BitFlow's own seccomp profile (Docker/OCI JSON format): an allow-list, everything else fails with
 * EPERM. Docker's default profile is not enough here: it lets a container create AF_VSOCK sockets
 * (which bypass `--network none` on a VM) and allows io_uring, through which this kernel can create
 * sockets that a rule on socket() never sees.
 *
 * - socket() and socketpair() only for AF_UNIX; every other family gets EPERM.
 * - no io_uring, namespaces (unshare, setns, clone with CLONE_NEW*), mounts, bpf, ptrace and friends,
 *   kernel keyrings, perf, userfaultfd, modules, kexec, reboot, clock setting.
 * - clone3 answers ENOSYS so that glibc falls back to clone(), whose flags can be inspected.
 * - only the native architecture: 32-bit entry points (int 0x80, socketcall) do not match the filter
 *   and are refused by it.
 *
 * Names a kernel/architecture does not know are ignored by the engine, so one list serves x86-64 and
 * arm64.
 */

export interface SeccompArg { index: number, value: number, valueTwo?: number, op: 'SCMP_CMP_EQ' | 'SCMP_CMP_MASKED_EQ' | 'SCMP_CMP_NE' }
export interface SeccompRule { names: string[], action: 'SCMP_ACT_ALLOW' | 'SCMP_ACT_ERRNO', errnoRet?: number, args?: SeccompArg[], comment?: string }
export interface SeccompProfile {
  defaultAction: 'SCMP_ACT_ERRNO'
  defaultErrnoRet: number
  architectures: string[]
  syscalls: SeccompRule[]
}

export const EPERM = 1
export const ENOSYS = 38
export const AF_UNIX = 1

/** CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET */
export const CLONE_NAMESPACE_FLAGS = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

/** What python3 with numpy/scipy/pandas (and ordinary programs) need. */
export const ALLOWED_SYSCALLS: readonly string[] = [
  // files and descriptors
  'read', 'write', 'readv', 'writev', 'pread64', 'pwrite64', 'preadv', 'pwritev', 'preadv2', 'pwritev2',
  'open', 'openat', 'openat2', 'creat', 'close', 'close_range', 'lseek', '_llseek',
  'stat', 'fstat', 'lstat', 'newfstatat', 'stat64', 'fstat64', 'lstat64', 'fstatat64', 'statx',
  'statfs', 'fstatfs', 'statfs64', 'fstatfs64', 'access', 'faccessat', 'faccessat2',
  'readlink', 'readlinkat', 'getdents', 'getdents64', 'getcwd', 'chdir', 'fchdir',
  'mkdir', 'mkdirat', 'rmdir', 'unlink', 'unlinkat', 'rename', 'renameat', 'renameat2',
  'link', 'linkat', 'symlink', 'symlinkat', 'mknod', 'mknodat',
  'chmod', 'fchmod', 'fchmodat', 'chown', 'fchown', 'lchown', 'fchownat', 'umask',
  'truncate', 'ftruncate', 'fallocate', 'fsync', 'fdatasync', 'sync', 'syncfs', 'sync_file_range', 'flock',
  'fcntl', 'fcntl64', 'dup', 'dup2', 'dup3', 'pipe', 'pipe2', 'ioctl',
  'utime', 'utimes', 'utimensat', 'futimesat', 'fadvise64', 'readahead',
  'sendfile', 'sendfile64', 'splice', 'tee', 'vmsplice', 'copy_file_range',
  'getxattr', 'lgetxattr', 'fgetxattr', 'listxattr', 'llistxattr', 'flistxattr',
  'setxattr', 'lsetxattr', 'fsetxattr', 'removexattr', 'lremovexattr', 'fremovexattr',
  'inotify_init', 'inotify_init1', 'inotify_add_watch', 'inotify_rm_watch',
  'poll', 'ppoll', 'select', '_newselect', 'pselect6',
  'epoll_create', 'epoll_create1', 'epoll_ctl', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2',
  'eventfd', 'eventfd2', 'signalfd', 'signalfd4', 'timerfd_create', 'timerfd_settime', 'timerfd_gettime',
  // memory
  'brk', 'mmap', 'mmap2', 'munmap', 'mprotect', 'mremap', 'madvise', 'mincore', 'msync',
  'mlock', 'mlock2', 'munlock', 'mlockall', 'munlockall', 'membarrier', 'memfd_create', 'get_mempolicy',
  'pkey_alloc', 'pkey_free', 'pkey_mprotect',
  // processes and threads (clone is allowed below only without namespace flags)
  'fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid',
  'kill', 'tkill', 'tgkill', 'getpid', 'getppid', 'gettid', 'set_tid_address', 'set_robust_list', 'get_robust_list', 'rseq',
  'getuid', 'geteuid', 'getgid', 'getegid', 'getresuid', 'getresgid', 'getgroups',
  'setuid', 'setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid', 'setgroups', 'setfsuid', 'setfsgid',
  'getuid32', 'geteuid32', 'getgid32', 'getegid32',
  'getpgid', 'setpgid', 'getpgrp', 'getsid', 'setsid', 'prctl', 'arch_prctl', 'capget', 'capset',
  'futex', 'futex_time64', 'futex_waitv', 'sched_yield', 'sched_getaffinity', 'sched_setaffinity',
  'sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler', 'sched_getattr', 'sched_setattr',
  'sched_get_priority_max', 'sched_get_priority_min', 'sched_rr_get_interval', 'getcpu',
  'getpriority', 'setpriority', 'ioprio_get', 'ioprio_set',
  'getrlimit', 'setrlimit', 'prlimit64', 'ugetrlimit', 'getrusage', 'times', 'uname', 'sysinfo',
  'pidfd_open', 'pidfd_send_signal',
  // signals and time
  'rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigsuspend', 'rt_sigpending', 'rt_sigtimedwait',
  'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'sigaltstack', 'sigreturn', 'restart_syscall', 'pause', 'alarm',
  'nanosleep', 'clock_nanosleep', 'clock_gettime', 'clock_getres', 'gettimeofday', 'time',
  'getitimer', 'setitimer', 'timer_create', 'timer_settime', 'timer_gettime', 'timer_getoverrun', 'timer_delete',
  'getrandom',
  // System V IPC inside the task's own IPC namespace
  'shmget', 'shmat', 'shmdt', 'shmctl', 'semget', 'semop', 'semtimedop', 'semctl',
  // socket calls: they act on descriptors, which can only be AF_UNIX sockets (see socket/socketpair)
  'bind', 'connect', 'listen', 'accept', 'accept4', 'getsockname', 'getpeername', 'shutdown',
  'sendto', 'recvfrom', 'sendmsg', 'recvmsg', 'sendmmsg', 'recvmmsg', 'getsockopt', 'setsockopt'
]

/** Refused explicitly (also refused by default; listed so the intent is reviewable and tested). */
export const DENIED_SYSCALLS: readonly string[] = [
  'io_uring_setup', 'io_uring_enter', 'io_uring_register',
  'unshare', 'setns', 'mount', 'umount', 'umount2', 'pivot_root', 'chroot',
  'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount', 'open_tree', 'mount_setattr',
  'open_by_handle_at', 'name_to_handle_at',
  'bpf', 'ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'pidfd_getfd',
  'keyctl', 'add_key', 'request_key',
  'perf_event_open', 'userfaultfd', 'fanotify_init', 'lookup_dcookie',
  'init_module', 'finit_module', 'delete_module', 'create_module', 'get_kernel_syms', 'query_module',
  'kexec_load', 'kexec_file_load', 'reboot', 'swapon', 'swapoff', 'acct', 'quotactl', 'quotactl_fd',
  'sethostname', 'setdomainname', 'syslog', 'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex',
  'iopl', 'ioperm', 'vm86', 'vm86old', 'uselib', 'nfsservctl', '_sysctl', 'sysfs', 'ustat',
  'mbind', 'set_mempolicy', 'migrate_pages', 'move_pages', 'memfd_secret', 'socketcall',
  'personality', 'seccomp'
]

export type SeccompArch = 'x64' | 'arm64'

/** The profile for the host's architecture (`process.arch` values). */
export function buildSeccompProfile (arch: string = process.arch): SeccompProfile {
  const architectures = arch === 'x64' ? ['SCMP_ARCH_X86_64'] : arch === 'arm64' ? ['SCMP_ARCH_AARCH64'] : undefined
  if (architectures === undefined) throw new Error(`no seccomp profile for CPU architecture ${arch}; supported: x64, arm64`)
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures,
    syscalls: [
      { names: [...ALLOWED_SYSCALLS], action: 'SCMP_ACT_ALLOW' },
      { names: ['socket', 'socketpair'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_UNIX, op: 'SCMP_CMP_EQ' }], comment: 'AF_UNIX only' },
      // clone's flags are its first argument on x86-64 and arm64: allowed only with no CLONE_NEW* bit
      { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }], comment: 'no new namespaces' },
      // clone3 passes its flags in memory, which seccomp cannot read: make glibc fall back to clone
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
      { names: [...DENIED_SYSCALLS], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM }
    ]
  }
}

/** The profile as the engine takes it in `SecurityOpt: ["seccomp=<json>"]`. */
export function seccompSecurityOpt (profile: SeccompProfile = buildSeccompProfile()): string {
  return `seccomp=${JSON.stringify(profile)}`
}
