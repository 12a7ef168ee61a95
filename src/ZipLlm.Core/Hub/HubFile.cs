using ZipLlm.Config;
using ZipLlm.Domain;

namespace ZipLlm.Hub;

/// <summary>One file of a model repository, as the hub's tree listing describes it.</summary>
/// <param name="Path">Path inside the repository.</param>
/// <param name="Size">Byte length of the file's content (the LFS object's, for LFS files).</param>
/// <param name="Sha256">Lower-case hex SHA-256 of the content for LFS files; <see langword="null"/> otherwise.</param>
/// <param name="GitOid">Git blob id (SHA-1 of <c>"blob {size}\0"</c> + content) for files kept in Git itself; <see langword="null"/> for LFS files.</param>
internal sealed record HubFile(string Path, long Size, string? Sha256, string? GitOid);

/// <summary>Progress of one file's download.</summary>
/// <param name="ModelId">The model being downloaded.</param>
/// <param name="File">The file's path in the repository.</param>
/// <param name="BytesDone">Bytes on disk so far (a resumed file starts above zero).</param>
/// <param name="BytesTotal">The file's size.</param>
/// <param name="Completed">Whether the file is verified and in place (or was already).</param>
internal readonly record struct HubDownloadProgress(ModelId ModelId, string File, long BytesDone, long BytesTotal, bool Completed);

/// <summary>Progress of one model's download, all its files together.</summary>
/// <param name="ModelId">The model being downloaded.</param>
/// <param name="FilesDone">Files verified and in place (or found complete).</param>
/// <param name="FilesTotal">Files to download.</param>
/// <param name="BytesDone">Bytes on disk so far, of the files to download.</param>
/// <param name="BytesTotal">Bytes of the files to download.</param>
internal readonly record struct HubTransferProgress(ModelId ModelId, int FilesDone, int FilesTotal, long BytesDone, long BytesTotal);

/// <summary>What downloading a model did.</summary>
/// <param name="ModelId">The model.</param>
/// <param name="Folder">Where its files are.</param>
/// <param name="FilesDownloaded">Files fetched (wholly or by resuming).</param>
/// <param name="FilesSkipped">Files already complete.</param>
/// <param name="BytesDownloaded">Bytes received over the network.</param>
/// <param name="Commit">The commit the revision pointed at, whose files these are.</param>
internal sealed record HubDownloadSummary(ModelId ModelId, string Folder, int FilesDownloaded, int FilesSkipped, long BytesDownloaded, string Commit);
