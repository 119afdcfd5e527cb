using System.Runtime.InteropServices;

namespace MirrorEmu.Calibration;

/// <summary>
/// The host kernel's memory-management calls, for comparing the emulator with the real kernel (the
/// differential test, docs/design.md invariant 6): syscall numbers, the few libc entry points the test
/// process needs, and the machine code of <see cref="LinuxMmProcess"/>'s syscall server.
/// </summary>
/// <remarks>
/// <para>Why a server process: the operations under test (MAP_FIXED over arbitrary ranges, mremap,
/// fork, accesses that end in SIGSEGV or SIGBUS) must not touch the test host's own address space
/// or kill it. So they run in a forked child that has shed every mapping of the .NET runtime and
/// executes only a few hundred bytes of machine code: read a command from a pipe, make the syscall,
/// write the result back. Nothing in the child calls back into the runtime, so forking a
/// multithreaded .NET process is safe here; the child's accesses fault exactly as user code does
/// (its copy command is a <c>rep movsb</c> with a SIGSEGV/SIGBUS handler that reports the signal and
/// address), and a hung child is killed by its parent's timeout, never the test host.</para>
/// <para>No C compiler is needed on the machine that runs it: the machine code is below, with its
/// assembly source. x86-64 only.</para>
/// </remarks>
internal static unsafe partial class LinuxMm
{
    /// <summary>The host page size this comparison supports (the emulator's <see cref="Mm.PageGeometry.PageSize"/>).</summary>
    public const int PageSize = 4096;

    /// <summary>read(2).</summary>
    public const long SysRead = 0;
    /// <summary>write(2).</summary>
    public const long SysWrite = 1;
    /// <summary>close(2).</summary>
    public const long SysClose = 3;
    /// <summary>ioctl(2).</summary>
    public const long SysIoctl = 16;
    /// <summary>mmap(2).</summary>
    public const long SysMmap = 9;
    /// <summary>mprotect(2).</summary>
    public const long SysMprotect = 10;
    /// <summary>munmap(2).</summary>
    public const long SysMunmap = 11;
    /// <summary>rt_sigaction(2).</summary>
    public const long SysRtSigaction = 13;
    /// <summary>rt_sigprocmask(2).</summary>
    public const long SysRtSigprocmask = 14;
    /// <summary>mremap(2).</summary>
    public const long SysMremap = 25;
    /// <summary>msync(2).</summary>
    public const long SysMsync = 26;
    /// <summary>mincore(2).</summary>
    public const long SysMincore = 27;
    /// <summary>madvise(2).</summary>
    public const long SysMadvise = 28;
    /// <summary>ftruncate(2).</summary>
    public const long SysFtruncate = 77;
    /// <summary>mlock(2).</summary>
    public const long SysMlock = 149;
    /// <summary>munlock(2).</summary>
    public const long SysMunlock = 150;
    /// <summary>exit_group(2).</summary>
    public const long SysExitGroup = 231;
    /// <summary>userfaultfd(2).</summary>
    public const long SysUserfaultfd = 323;
    /// <summary>memfd_create(2).</summary>
    public const long SysMemfdCreate = 319;
    /// <summary>mlock2(2).</summary>
    public const long SysMlock2 = 325;
    /// <summary>pipe2(2).</summary>
    public const long SysPipe2 = 293;
    /// <summary>pidfd_open(2).</summary>
    public const long SysPidfdOpen = 434;
    /// <summary>close_range(2).</summary>
    public const long SysCloseRange = 436;
    /// <summary>pidfd_getfd(2).</summary>
    public const long SysPidfdGetfd = 438;

    /// <summary>The server's own command: fork a new server on the pipes named by the arguments.</summary>
    public const long CmdForkInto = -1;
    /// <summary>The server's own command: copy bytes with <c>rep movsb</c>, reporting a fault instead of dying.</summary>
    public const long CmdCopy = -2;

    /// <summary>Offset of the SIGSEGV/SIGBUS handler in <see cref="s_serverCode"/>.</summary>
    public const int HandlerOffset = 0x146;
    /// <summary>Offset of the signal restorer (rt_sigreturn) in <see cref="s_serverCode"/>.</summary>
    public const int RestorerOffset = 0x186;

    // The server, assembled from this source (GNU as, .intel_syntax noprefix). The replies are 24 bytes:
    // the syscall's rax, then for the copy command the signal number and si_addr (0 when it did not fault).
    //
    //  spawn:      push rbx; push r12; push r13; sub rsp, 64          ; long spawn(cmdIn, resOut, closeFrom)
    //              mov r12, rdi; mov r13, rsi; mov rbx, rdx
    //              mov eax, 57; syscall                               ; fork
    //              test rax, rax; jnz parent
    //  child:      mov rdi, r12; call dupHigh; mov r12, rax           ; move the pipes out of the way,
    //              mov rdi, r13; call dupHigh; mov r13, rax
    //              mov rdi, r12; xor esi, esi; mov eax, 33; syscall   ; dup2(cmdIn, 0)
    //              mov rdi, r13; mov esi, 1; mov eax, 33; syscall     ; dup2(resOut, 1)
    //              mov rdi, rbx; mov esi, -1; xor edx, edx
    //              mov eax, 436; syscall                              ; close_range(closeFrom, ~0U, 0)
    //              xor eax, eax                                       ; handshake: reply 0
    //  reply:      mov [rsp], rax; mov edi, 1; mov rsi, rsp; mov edx, 24
    //              mov eax, 1; syscall; cmp rax, 24; jne quit         ; write(1, buf, 24)
    //  loop:       xor edi, edi; mov rsi, rsp; mov edx, 56
    //              xor eax, eax; syscall; cmp rax, 56; jne quit       ; read(0, buf, 56): nr and six arguments
    //              mov rax, [rsp]; cmp rax, -1; je forkinto; cmp rax, -2; je copy
    //              mov rdi, [rsp+8]; mov rsi, [rsp+16]; mov rdx, [rsp+24]
    //              mov r10, [rsp+32]; mov r8, [rsp+40]; mov r9, [rsp+48]
    //              syscall; jmp reply
    //  forkinto:   mov r12, [rsp+8]; mov r13, [rsp+16]; mov rbx, [rsp+24]
    //              mov eax, 57; syscall; test rax, rax; jnz reply; jmp child
    //  copy:       mov rdi, [rsp+8]; mov rsi, [rsp+16]; mov rcx, [rsp+24]
    //              mov qword ptr [rsp+8], 0; mov qword ptr [rsp+16], 0; cld
    //  copyinsn:   rep movsb
    //  copydone:   mov rax, rcx; jmp reply                            ; bytes not copied
    //  quit:       mov eax, 231; xor edi, edi; syscall; jmp quit      ; exit_group(0) on EOF
    //  dupHigh:    xor esi, esi; mov edx, 64; mov eax, 72; syscall; ret   ; fcntl(fd, F_DUPFD, 64)
    //  parent:     add rsp, 64; pop r13; pop r12; pop rbx; ret
    //  handler:    lea rcx, [rip+copyinsn]; cmp [rdx+168], rcx; jne die  ; uc_mcontext.gregs[REG_RIP]
    //              mov rax, [rdx+160]; mov [rax+8], rdi               ; REG_RSP is the command buffer: signo,
    //              mov rcx, [rsi+16]; mov [rax+16], rcx               ; si_addr,
    //              lea rcx, [rip+copydone]; mov [rdx+168], rcx; ret   ; and resume after the copy
    //  die:        mov eax, 231; mov edi, 99; syscall; jmp die
    //  restorer:   mov eax, 15; syscall                               ; rt_sigreturn
    private static readonly byte[] s_serverCode =
    [
        0x53, 0x41, 0x54, 0x41, 0x55, 0x48, 0x83, 0xEC, 0x40, 0x49, 0x89, 0xFC, 0x49, 0x89, 0xF5, 0x48,
        0x89, 0xD3, 0xB8, 0x39, 0x00, 0x00, 0x00, 0x0F, 0x05, 0x48, 0x85, 0xC0, 0x0F, 0x85, 0x1A, 0x01,
        0x00, 0x00, 0x4C, 0x89, 0xE7, 0xE8, 0x03, 0x01, 0x00, 0x00, 0x49, 0x89, 0xC4, 0x4C, 0x89, 0xEF,
        0xE8, 0xF8, 0x00, 0x00, 0x00, 0x49, 0x89, 0xC5, 0x4C, 0x89, 0xE7, 0x31, 0xF6, 0xB8, 0x21, 0x00,
        0x00, 0x00, 0x0F, 0x05, 0x4C, 0x89, 0xEF, 0xBE, 0x01, 0x00, 0x00, 0x00, 0xB8, 0x21, 0x00, 0x00,
        0x00, 0x0F, 0x05, 0x48, 0x89, 0xDF, 0xBE, 0xFF, 0xFF, 0xFF, 0xFF, 0x31, 0xD2, 0xB8, 0xB4, 0x01,
        0x00, 0x00, 0x0F, 0x05, 0x31, 0xC0, 0x48, 0x89, 0x04, 0x24, 0xBF, 0x01, 0x00, 0x00, 0x00, 0x48,
        0x89, 0xE6, 0xBA, 0x18, 0x00, 0x00, 0x00, 0xB8, 0x01, 0x00, 0x00, 0x00, 0x0F, 0x05, 0x48, 0x83,
        0xF8, 0x18, 0x0F, 0x85, 0x9A, 0x00, 0x00, 0x00, 0x31, 0xFF, 0x48, 0x89, 0xE6, 0xBA, 0x38, 0x00,
        0x00, 0x00, 0x31, 0xC0, 0x0F, 0x05, 0x48, 0x83, 0xF8, 0x38, 0x0F, 0x85, 0x82, 0x00, 0x00, 0x00,
        0x48, 0x8B, 0x04, 0x24, 0x48, 0x83, 0xF8, 0xFF, 0x74, 0x28, 0x48, 0x83, 0xF8, 0xFE, 0x74, 0x46,
        0x48, 0x8B, 0x7C, 0x24, 0x08, 0x48, 0x8B, 0x74, 0x24, 0x10, 0x48, 0x8B, 0x54, 0x24, 0x18, 0x4C,
        0x8B, 0x54, 0x24, 0x20, 0x4C, 0x8B, 0x44, 0x24, 0x28, 0x4C, 0x8B, 0x4C, 0x24, 0x30, 0x0F, 0x05,
        0xEB, 0x94, 0x4C, 0x8B, 0x64, 0x24, 0x08, 0x4C, 0x8B, 0x6C, 0x24, 0x10, 0x48, 0x8B, 0x5C, 0x24,
        0x18, 0xB8, 0x39, 0x00, 0x00, 0x00, 0x0F, 0x05, 0x48, 0x85, 0xC0, 0x0F, 0x85, 0x75, 0xFF, 0xFF,
        0xFF, 0xE9, 0x2C, 0xFF, 0xFF, 0xFF, 0x48, 0x8B, 0x7C, 0x24, 0x08, 0x48, 0x8B, 0x74, 0x24, 0x10,
        0x48, 0x8B, 0x4C, 0x24, 0x18, 0x48, 0xC7, 0x44, 0x24, 0x08, 0x00, 0x00, 0x00, 0x00, 0x48, 0xC7,
        0x44, 0x24, 0x10, 0x00, 0x00, 0x00, 0x00, 0xFC, 0xF3, 0xA4, 0x48, 0x89, 0xC8, 0xE9, 0x44, 0xFF,
        0xFF, 0xFF, 0xB8, 0xE7, 0x00, 0x00, 0x00, 0x31, 0xFF, 0x0F, 0x05, 0xEB, 0xF5, 0x31, 0xF6, 0xBA,
        0x40, 0x00, 0x00, 0x00, 0xB8, 0x48, 0x00, 0x00, 0x00, 0x0F, 0x05, 0xC3, 0x48, 0x83, 0xC4, 0x40,
        0x41, 0x5D, 0x41, 0x5C, 0x5B, 0xC3, 0x48, 0x8D, 0x0D, 0xCB, 0xFF, 0xFF, 0xFF, 0x48, 0x39, 0x8A,
        0xA8, 0x00, 0x00, 0x00, 0x75, 0x22, 0x48, 0x8B, 0x82, 0xA0, 0x00, 0x00, 0x00, 0x48, 0x89, 0x78,
        0x08, 0x48, 0x8B, 0x4E, 0x10, 0x48, 0x89, 0x48, 0x10, 0x48, 0x8D, 0x0D, 0xAA, 0xFF, 0xFF, 0xFF,
        0x48, 0x89, 0x8A, 0xA8, 0x00, 0x00, 0x00, 0xC3, 0xB8, 0xE7, 0x00, 0x00, 0x00, 0xBF, 0x63, 0x00,
        0x00, 0x00, 0x0F, 0x05, 0xEB, 0xF2, 0xB8, 0x0F, 0x00, 0x00, 0x00, 0x0F, 0x05,
    ];

    private static readonly Lock s_codeLock = new();
    private static nint s_code;

    /// <summary>True where the comparison can run: Linux on x86-64 with 4 KiB pages; else <paramref name="why"/> says what is missing.</summary>
    /// <param name="why">The reason it cannot, or empty.</param>
    public static bool IsSupported(out string why)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            why = $"the host kernel comparison needs Linux on x86-64, not {RuntimeInformation.OSDescription} {RuntimeInformation.ProcessArchitecture}";
            return false;
        }

        if (Environment.SystemPageSize != PageSize)
        {
            why = $"the host's page size is {Environment.SystemPageSize} bytes; the emulator's is {PageSize}";
            return false;
        }

        why = string.Empty;
        return true;
    }

    /// <summary>The host kernel's release (uname -r), or "unknown".</summary>
    public static string KernelRelease()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>The address of the server's machine code in this process (mapped read+execute once, never unmapped).</summary>
    internal static nint ServerCode
    {
        get
        {
            lock (s_codeLock)
            {
                if (s_code != 0)
                {
                    return s_code;
                }

                nint page = Mmap(0, PageSize, 3, 0x22, -1, 0); // PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS
                if (page == -1)
                {
                    throw new InvalidOperationException($"mmap of the server's code page failed: errno {Marshal.GetLastPInvokeError()}");
                }

                s_serverCode.CopyTo(new Span<byte>((void*)page, PageSize));
                if (Mprotect(page, PageSize, 5) != 0) // PROT_READ|PROT_EXEC
                {
                    throw new InvalidOperationException($"mprotect of the server's code page failed: errno {Marshal.GetLastPInvokeError()}");
                }

                s_code = page;
                return page;
            }
        }
    }

    /// <summary>Forks this process into a syscall server (the machine code's <c>spawn</c>): the child keeps only
    /// <paramref name="cmdIn"/> as fd 0 and <paramref name="resOut"/> as fd 1.</summary>
    /// <returns>The child's pid, or a negated errno.</returns>
    internal static long Spawn(int cmdIn, int resOut)
    {
        var spawn = (delegate* unmanaged<long, long, long, long>)ServerCode;
        return spawn(cmdIn, resOut, 2);
    }

    /// <summary>A raw syscall in this process.</summary>
    /// <returns>The result, or -1 with the errno in <see cref="Marshal.GetLastPInvokeError"/>.</returns>
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, long a2, long a3);

    /// <summary>pipe2(2).</summary>
    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    internal static partial int Pipe2(int* fds, int flags);

    /// <summary>read(2).</summary>
    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(int fd, void* buffer, nuint count);

    /// <summary>write(2).</summary>
    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, void* buffer, nuint count);

    /// <summary>poll(2).</summary>
    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    internal static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    /// <summary>close(2).</summary>
    [LibraryImport("libc", EntryPoint = "close")]
    internal static partial int Close(int fd);

    /// <summary>ioctl(2).</summary>
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, ulong request, void* arg);

    /// <summary>kill(2).</summary>
    [LibraryImport("libc", EntryPoint = "kill")]
    internal static partial int Kill(int pid, int signal);

    /// <summary>waitpid(2).</summary>
    [LibraryImport("libc", EntryPoint = "waitpid")]
    internal static partial int WaitPid(int pid, int* status, int options);

    /// <summary>mmap(2).</summary>
    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint Mmap(nint address, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(nint address, nuint length, int prot);

    /// <summary>struct pollfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct PollFd
    {
        /// <summary>The descriptor.</summary>
        public int Fd;

        /// <summary>Requested events (POLLIN = 1).</summary>
        public short Events;

        /// <summary>Returned events.</summary>
        public short Revents;
    }
}
