using ZipLlm.Domain;

namespace ZipLlm.Store.Backends;

/// <summary>What a backend knows of one object at rest without reading it.</summary>
/// <param name="Length">Its length in bytes.</param>
/// <param name="WrittenAt">When it was written (garbage collection keeps young objects for a grace period).</param>
internal readonly record struct ObjectStat(long Length, DateTimeOffset WrittenAt);

/// <summary>An object as a listing of the store shows it: its name, length and write time.</summary>
internal readonly record struct ListedObject(ContentHash Hash, ObjectStat Stat);

/// <summary>
/// Where a store's bytes rest: its objects (immutable, named by the SHA-256 of what they encode), its manifests
/// (one per model, written once, last), its format marker and its locks. The engine above (<see cref="ModelStore"/>,
/// <see cref="ObjectStore"/>) touches stored bytes only through this seam, so a folder and an object-storage bucket
/// are interchangeable; every implementation passes one shared test suite.
/// </summary>
/// <remarks>
/// Manifests are named by keys of the form <c>org/name.json</c>; objects by their <see cref="ContentHash"/>.
/// Failures follow the library's contract: <see cref="FileNotFoundException"/> for what is absent,
/// <see cref="StoreDamageException"/> for something in an object's place that is not one, <see cref="IOException"/>
/// for the rest.
/// </remarks>
internal interface IStoreBackend
{
    /// <summary>Where the store is, for messages: a folder path or a URL.</summary>
    string Location { get; }

    /// <summary>The local folder holding the store, when it is one (a restore must never write into it); else null.</summary>
    string? LocalRoot { get; }

    /// <summary>The format marker's bytes, or null when there is no store here yet.</summary>
    /// <exception cref="InvalidDataException">The location lies inside another store (a folder under its folder, a prefix under its prefix).</exception>
    byte[]? ReadFormat();

    /// <summary>
    /// Makes a new store here with <paramref name="format"/> as its marker. Several creators at once are fine (they
    /// write the same bytes); a location that holds anything else is refused.
    /// </summary>
    /// <exception cref="IOException">The location holds something that is not a store.</exception>
    void Create(ReadOnlySpan<byte> format);

    /// <summary>The object's length and write time, or null when it is absent (or something else stands in its place).</summary>
    ObjectStat? StatObject(ContentHash hash);

    /// <summary>
    /// Starts writing an object. It becomes visible whole, at <see cref="IObjectUpload.Commit"/>, or not at all;
    /// writing one that exists replaces it with equal content, which is harmless since names are content hashes.
    /// </summary>
    IObjectUpload CreateObject(ContentHash hash);

    /// <summary>Starts a session of object reads; the objects it opens share its bounded resources (open files, connections).</summary>
    IObjectReadSession OpenReadSession();

    /// <summary>
    /// Every object, with its length and write time as the listing gives them (anything else found among them is
    /// skipped): a bucket answers a page of a thousand in one request, where <see cref="StatObject"/> is one each.
    /// </summary>
    IEnumerable<ListedObject> ListObjects();

    /// <summary>
    /// Counts an object found stored and reused (by a new model) as written now, so that gc's grace, which keeps
    /// unneeded objects written recently, protects it from its reuse on, as it protects a new one (git freshens a
    /// loose object it would have written the same way). Best effort: an object that cannot be refreshed is left as is.
    /// </summary>
    /// <exception cref="IOException">The store cannot be reached.</exception>
    void RefreshObject(ContentHash hash);

    /// <summary>Deletes the object when it exists.</summary>
    void DeleteObject(ContentHash hash);

    /// <summary>Makes every object written so far durable: called before a manifest names them.</summary>
    void FlushObjects();

    /// <summary>
    /// A token that changes whenever the manifest at <paramref name="key"/> does (its parse can be reused while it
    /// is the same), or null when there is none.
    /// </summary>
    string? ManifestVersion(string key);

    /// <summary>The manifest's bytes, or null when there is none.</summary>
    byte[]? ReadManifest(string key);

    /// <summary>Every key under which something lies among the manifests (a key that does not end in <c>.json</c> is no manifest; the store reports it).</summary>
    IEnumerable<string> ListManifests();

    /// <summary>Writes a manifest exclusively, durably and atomically: false, and nothing written, when one is there already.</summary>
    bool CreateManifest(string key, ReadOnlySpan<byte> bytes);

    /// <summary>Deletes the manifest, durably, when it exists.</summary>
    void DeleteManifest(string key);

    /// <summary>How a manifest is named in messages (its path, for a folder).</summary>
    string DescribeManifest(string key);

    /// <summary>
    /// Takes the lock <paramref name="name"/>: shared locks coexist, an exclusive one excludes all. Released on
    /// dispose, and when the process dies. A lock that can be lost while held (a bucket's lease) is an
    /// <see cref="ILosableLock"/>.
    /// </summary>
    /// <exception cref="TimeoutException">Not free within <paramref name="timeout"/>.</exception>
    /// <exception cref="OperationCanceledException">Cancelled while waiting.</exception>
    IDisposable Lock(string name, bool exclusive, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Removes what writers that died mid-write left behind (their temporary files or uploads).</summary>
    void SweepTemporary();

    /// <summary>
    /// Every manifest key with its version (as <see cref="ManifestVersion"/> gives it), from one listing: what the
    /// catalog is checked against, without reading a manifest.
    /// </summary>
    IEnumerable<(string Key, string Version)> ListManifestVersions();

    /// <summary>Every name among the catalog's files (<see cref="Catalog.StoreCatalog"/>: its roots and segments).</summary>
    IEnumerable<string> ListCatalog();

    /// <summary>The bytes of the catalog file <paramref name="name"/>, or null when there is none.</summary>
    byte[]? ReadCatalog(string name);

    /// <summary>Writes the catalog file <paramref name="name"/> exclusively, durably and atomically: false, and nothing written, when one is there already.</summary>
    bool CreateCatalog(string name, ReadOnlySpan<byte> bytes);

    /// <summary>Deletes the catalog file <paramref name="name"/> when it exists.</summary>
    void DeleteCatalog(string name);

    /// <summary>
    /// Forgets the lock <paramref name="name"/> of a model stored or removed, so a store's lock folder does not grow
    /// with the models it ever held; the caller holds it, or holds the store lock exclusively. Best effort.
    /// </summary>
    void ForgetLock(string name);
}

/// <summary>
/// A lock that can be lost while held (a lease in a bucket: not renewed in time, or broken and taken by another
/// process). What was read under it may no longer hold, and what it guards is no longer guarded.
/// </summary>
internal interface ILosableLock : IDisposable
{
    /// <summary>Whether the lock is lost: it protects nothing any more, and should be let go and taken again.</summary>
    bool IsLost { get; }

    /// <summary>
    /// Whether the lock is still held, asked of the store when the holder cannot tell by itself: a lease that another
    /// process broke while this one was paused is known lost only once a renewal fails, or the lease's time runs out.
    /// False marks it lost. For an operation under the lock that found something missing or changed: a lost lock, not
    /// damage, explains it. A store that does not answer leaves it as far as the holder knows.
    /// </summary>
    bool ConfirmHeld();

    /// <summary>
    /// Whether <paramref name="held"/>, a lock from <see cref="IStoreBackend.Lock"/> not yet released, was lost (the
    /// store asked when the holder cannot tell); a lock that cannot be lost never was.
    /// </summary>
    static bool WasLost(IDisposable held) => held is ILosableLock losable && !losable.ConfirmHeld();
}

/// <summary>An object being written; disposing it without a commit discards it.</summary>
internal interface IObjectUpload : IDisposable
{
    /// <summary>Where the object's bytes go.</summary>
    Stream Stream { get; }

    /// <summary>Makes the object visible under its name, whole.</summary>
    /// <returns>Its length.</returns>
    long Commit();
}

/// <summary>Object reads that share bounded resources; dispose it when done.</summary>
internal interface IObjectReadSession : IDisposable
{
    /// <summary>Opens an object for reading ranges.</summary>
    /// <exception cref="StoreDamageException">The object is missing, or something that is not one stands in its place.</exception>
    IObjectContent Open(ContentHash hash);
}

/// <summary>An object open for reading: any range, from any thread.</summary>
internal interface IObjectContent
{
    /// <summary>Its length in bytes.</summary>
    long Length { get; }

    /// <summary>Fills <paramref name="destination"/> from <paramref name="offset"/>.</summary>
    /// <exception cref="EndOfStreamException">The object ends first (it was truncated or replaced).</exception>
    void Read(long offset, Span<byte> destination);
}
