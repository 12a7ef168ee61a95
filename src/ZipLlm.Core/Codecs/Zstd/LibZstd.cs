using System.Runtime.InteropServices;

namespace ZipLlm.Codecs.Zstd;

/// <summary>
/// The few libzstd functions the codec needs, bound at run time so that a machine without libzstd
/// falls back to the managed port instead of failing to start.
/// </summary>
internal static unsafe class LibZstd
{
    // ZSTD_decompressDCtx and ZSTD_compressCCtx are stable since 1.0, ZSTD_CCtx_setParameter and ZSTD_compress2
    // since 1.4.0, the oldest release still in common distributions.
    private const uint MinimumVersion = 10400;

    private static readonly string[] Names = ["libzstd.so.1", "libzstd.so", "libzstd.1.dylib", "libzstd.dylib", "libzstd.dll", "zstd"];

    private static readonly delegate* unmanaged<nint> CreateCCtxFn;
    private static readonly delegate* unmanaged<nint, nuint> FreeCCtxFn;
    private static readonly delegate* unmanaged<nint> CreateDCtxFn;
    private static readonly delegate* unmanaged<nint, nuint> FreeDCtxFn;
    private static readonly delegate* unmanaged<nint, byte*, nuint, byte*, nuint, int, nuint> CompressCCtxFn;
    private static readonly delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nuint> DecompressDCtxFn;
    private static readonly delegate* unmanaged<nint, int, int, nuint> SetParameterFn;
    private static readonly delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nuint> Compress2Fn;
    private static readonly delegate* unmanaged<nuint, uint> IsErrorFn;
    private static readonly delegate* unmanaged<nuint, byte*> GetErrorNameFn;

#pragma warning disable CA1810 // The static constructor binds every export or none.
    static LibZstd()
#pragma warning restore CA1810
    {
        nint handle = 0;
        foreach (string name in Names)
        {
            if (NativeLibrary.TryLoad(name, typeof(LibZstd).Assembly, DllImportSearchPath.SafeDirectories, out handle))
            {
                break;
            }
        }
        if (handle == 0)
        {
            LoadError = "no libzstd shared library found (" + string.Join(", ", Names) + ")";
            return;
        }
        try
        {
            var version = (delegate* unmanaged<uint>)NativeLibrary.GetExport(handle, "ZSTD_versionNumber");
            uint number = version();
            if (number < MinimumVersion)
            {
                LoadError = $"libzstd {number / 10000}.{number / 100 % 100}.{number % 100} is older than 1.4.0";
                return;
            }
            CreateCCtxFn = (delegate* unmanaged<nint>)NativeLibrary.GetExport(handle, "ZSTD_createCCtx");
            FreeCCtxFn = (delegate* unmanaged<nint, nuint>)NativeLibrary.GetExport(handle, "ZSTD_freeCCtx");
            CreateDCtxFn = (delegate* unmanaged<nint>)NativeLibrary.GetExport(handle, "ZSTD_createDCtx");
            FreeDCtxFn = (delegate* unmanaged<nint, nuint>)NativeLibrary.GetExport(handle, "ZSTD_freeDCtx");
            CompressCCtxFn = (delegate* unmanaged<nint, byte*, nuint, byte*, nuint, int, nuint>)NativeLibrary.GetExport(handle, "ZSTD_compressCCtx");
            DecompressDCtxFn = (delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nuint>)NativeLibrary.GetExport(handle, "ZSTD_decompressDCtx");
            SetParameterFn = (delegate* unmanaged<nint, int, int, nuint>)NativeLibrary.GetExport(handle, "ZSTD_CCtx_setParameter");
            Compress2Fn = (delegate* unmanaged<nint, byte*, nuint, byte*, nuint, nuint>)NativeLibrary.GetExport(handle, "ZSTD_compress2");
            IsErrorFn = (delegate* unmanaged<nuint, uint>)NativeLibrary.GetExport(handle, "ZSTD_isError");
            GetErrorNameFn = (delegate* unmanaged<nuint, byte*>)NativeLibrary.GetExport(handle, "ZSTD_getErrorName");
            Version = $"{number / 10000}.{number / 100 % 100}.{number % 100}";
            IsAvailable = true;
        }
        catch (EntryPointNotFoundException ex)
        {
            LoadError = "libzstd lacks an export: " + ex.Message;
        }
    }

    /// <summary>Whether every function was bound.</summary>
    public static bool IsAvailable { get; }

    /// <summary>Why the library is not available; null when it is.</summary>
    public static string? LoadError { get; }

    /// <summary>The loaded library's version, e.g. 1.5.4; null when not available.</summary>
    public static string? Version { get; }

    public static nint CreateCCtx() => CreateCCtxFn();

    public static void FreeCCtx(nint cctx) => FreeCCtxFn(cctx);

    public static nint CreateDCtx() => CreateDCtxFn();

    public static void FreeDCtx(nint dctx) => FreeDCtxFn(dctx);

    public static nuint CompressCCtx(nint cctx, byte* dst, nuint capacity, byte* src, nuint length, int level) =>
        CompressCCtxFn(cctx, dst, capacity, src, length, level);

    public static nuint DecompressDCtx(nint dctx, byte* dst, nuint capacity, byte* src, nuint length) =>
        DecompressDCtxFn(dctx, dst, capacity, src, length);

    /// <summary>ZSTD_c_compressionLevel of zstd.h's ZSTD_cParameter.</summary>
    public const int CompressionLevelParameter = 100;

    /// <summary>ZSTD_c_checksumFlag of zstd.h's ZSTD_cParameter.</summary>
    public const int ChecksumFlagParameter = 201;

    public static nuint SetParameter(nint cctx, int parameter, int value) => SetParameterFn(cctx, parameter, value);

    public static nuint Compress2(nint cctx, byte* dst, nuint capacity, byte* src, nuint length) =>
        Compress2Fn(cctx, dst, capacity, src, length);

    public static bool IsError(nuint code) => IsErrorFn(code) != 0;

    public static string ErrorName(nuint code) => Marshal.PtrToStringUTF8((nint)GetErrorNameFn(code)) ?? "unknown error";
}
