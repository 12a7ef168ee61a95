namespace ZipLlm.Domain;

/// <summary>Progress of long work: bytes done out of a total, for the current item.</summary>
/// <param name="Item">What is being worked on (a model or a file).</param>
/// <param name="DoneBytes">Bytes processed so far.</param>
/// <param name="TotalBytes">Bytes in all.</param>
/// <param name="Detail">More about the item's progress, shown after it (a download's <c>files 3/12</c>); none when null.</param>
internal readonly record struct ByteProgress(string Item, long DoneBytes, long TotalBytes, string? Detail = null);
