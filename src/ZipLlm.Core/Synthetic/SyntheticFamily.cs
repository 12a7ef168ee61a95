using System.Diagnostics;
using System.IO.Hashing;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using ZipLlm.Config;
using ZipLlm.Domain;
using ZipLlm.Safetensors;

namespace ZipLlm.Synthetic;

/// <summary>
/// Generates a deterministic family of synthetic models (same seed and size, same bytes): a BF16
/// Llama-shaped base and finetunes of every kind the store must handle, plus an unrelated small
/// model of awkward dtypes. Each model is written to <c>model_dir/org_name/</c>; a model whose
/// folder is already complete is skipped, so a second run is cheap.
/// </summary>
internal static class SyntheticFamily
{
    /// <summary>First line of a model list written for a synthetic family.</summary>
    public const string ListMarker = "# zipllm synthetic model family";

    /// <summary>The seed used when none is given.</summary>
    public const int DefaultSeed = 42;

    /// <summary>The <c>__metadata__</c> every Llama shard carries, as <c>transformers</c> writes it.</summary>
    private static readonly Dictionary<string, string> s_shardMetadata = new() { ["format"] = "pt" };

    private static readonly (SyntheticModelKind Kind, ModelId Id, string Description)[] s_models =
    [
        (SyntheticModelKind.Base, ModelId.Parse("synthetic/llama-base"), "A BF16 Llama-shaped base model in two shards."),
        (SyntheticModelKind.FullFinetune, ModelId.Parse("synthetic/llama-full-ft"), "A full finetune: every weight is the base's plus a small change."),
        (SyntheticModelKind.LoraFinetune, ModelId.Parse("synthetic/llama-lora-ft"), "A rank-8 LoRA merged into q_proj and v_proj; all other tensors equal the base's."),
        (SyntheticModelKind.ReshardedFinetune, ModelId.Parse("my_org/llama-full-ft-resharded"), "The full finetune's tensors re-sharded into three files in another order."),
        (SyntheticModelKind.VocabExtendedFinetune, ModelId.Parse("synthetic/llama-vocab-ext"), "A finetune with extra vocabulary rows in embed_tokens and lm_head."),
        (SyntheticModelKind.F16Copy, ModelId.Parse("synthetic/llama-base-f16"), "The base converted to F16."),
        (SyntheticModelKind.ReUpload, ModelId.Parse("my_org/llama-base-reupload"), "A byte-identical re-upload of the base."),
        (SyntheticModelKind.Standalone, ModelId.Parse("synthetic/mixed-f32"), "An unrelated small F32 model with odd-length, empty, scalar and BOOL tensors."),
        (SyntheticModelKind.FarFinetune, ModelId.Parse("synthetic/llama-far-ft"), "A finetune trained far from the base: every weight moved by about its own magnitude."),
        (SyntheticModelKind.ChannelScaled, ModelId.Parse("synthetic/llama-channels"), "An unrelated BF16 model whose rows and columns have different scales, as trained weights do."),
        (SyntheticModelKind.ChainFinetune, ModelId.Parse("synthetic/llama-full-ft-chat"), "A finetune of the full finetune (a chat model trained from an instruct one): a chain base, instruct, chat."),
        // Last, and only on request: the default family's bytes, model count and timings stay as they were.
        (SyntheticModelKind.RetrainedFinetune, ModelId.Parse("synthetic/llama-retrained"), "A model retrained from the base: every weight scaled by 1 plus a noise of 50-80% of itself, a few signs flipped, rows drifted."),
    ];

    /// <summary>The kinds of the default family: every kind but <see cref="SyntheticModelKind.RetrainedFinetune"/>, which is added on request.</summary>
    public static IReadOnlyList<SyntheticModelKind> DefaultKinds { get; } =
        [.. s_models.Select(m => m.Kind).Where(k => k != SyntheticModelKind.RetrainedFinetune)];

    /// <summary>The model each kind is a finetune of (its base in base_ft.json and its card's base_model), or null.</summary>
    private static SyntheticModelKind? BaseKindOf(SyntheticModelKind kind) => kind switch
    {
        SyntheticModelKind.Base or SyntheticModelKind.Standalone or SyntheticModelKind.ChannelScaled => null,
        // The re-sharded copy holds the full finetune's very tensors, and the chat model was trained from it.
        SyntheticModelKind.ReshardedFinetune or SyntheticModelKind.ChainFinetune => SyntheticModelKind.FullFinetune,
        _ => SyntheticModelKind.Base,
    };

    /// <summary>The id the family gives a model of <paramref name="kind"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="kind"/> is not a defined value.</exception>
    public static ModelId IdOf(SyntheticModelKind kind)
    {
        foreach (var model in s_models)
        {
            if (model.Kind == kind)
            {
                return model.Id;
            }
        }
        throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown synthetic model kind.");
    }

    /// <summary>
    /// Writes every model of the family into <paramref name="modelDir"/> (created if needed),
    /// skipping models whose folder is already complete. Does not write the model list or
    /// <c>base_ft.json</c>: see <see cref="SyntheticFamilyResult.WriteModelList"/> and
    /// <see cref="SyntheticFamilyResult.WriteBaseFt"/>.
    /// </summary>
    /// <param name="modelDir">Folder that receives one sub-folder per model.</param>
    /// <param name="size">How big each model is.</param>
    /// <param name="seed">Seed of every random value; the same seed and size give the same bytes.</param>
    /// <param name="threads">Threads used to make tensor data; 0 means all cores. Does not change the output.</param>
    /// <param name="logger">Receives one line per model.</param>
    /// <param name="cancellationToken">Stops between blocks; files in progress are removed, finished ones stay.</param>
    /// <param name="retrained">Also writes the <see cref="SyntheticModelKind.RetrainedFinetune"/>, last.</param>
    /// <returns>The models in model-list order (base first) with their roles.</returns>
    /// <exception cref="ArgumentException"><paramref name="modelDir"/> is empty, or <paramref name="threads"/> is negative.</exception>
    /// <exception cref="IOException">A file cannot be written.</exception>
    public static SyntheticFamilyResult Generate(
        string modelDir,
        SyntheticSize size = SyntheticSize.Tiny,
        int seed = DefaultSeed,
        int threads = 0,
        ILogger? logger = null,
        CancellationToken cancellationToken = default,
        bool retrained = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(modelDir);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        if (!Enum.IsDefined(size))
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "Unknown synthetic size.");
        }
        logger ??= NullLogger.Instance;
        int workers = threads == 0 ? Codecs.WorkerPool.DefaultThreads : threads;
        string root = Path.GetFullPath(modelDir);
        Directory.CreateDirectory(root);

        var plans = Plan(root, size, seed, retrained);
        var models = new List<SyntheticModel>();
        ModelId baseId = s_models[0].Id;
        foreach ((SyntheticModelKind kind, ModelPlan plan) in plans)
        {
            cancellationToken.ThrowIfCancellationRequested();
            bool generated = false;
            if (ModelWriter.IsComplete(plan))
            {
                logger.LogInformation("{Model}: already complete in {Folder}, skipped", plan.Id, plan.Folder);
            }
            else
            {
                var clock = Stopwatch.StartNew();
                ModelWriter.Write(plan, workers, cancellationToken);
                generated = true;
                logger.LogInformation("{Model}: generated {Kind} ({Megabytes:F1} MB) in {Seconds:F2} s",
                    plan.Id, kind, plan.TotalBytes / 1e6, clock.Elapsed.TotalSeconds);
            }
            ModelId? itsBase = BaseKindOf(kind) is { } baseKind ? IdOf(baseKind) : null;
            models.Add(new SyntheticModel(plan.Id, kind, itsBase, plan.Folder, plan.TotalBytes, generated));
        }
        return new SyntheticFamilyResult(models, size, seed);
    }

    private static List<(SyntheticModelKind Kind, ModelPlan Plan)> Plan(string root, SyntheticSize size, int seed, bool retrained)
    {
        var arch = LlamaArchitecture.For(size);
        string Folder(ModelId id) => id.FolderPath(root);
        var plans = new List<(SyntheticModelKind, ModelPlan)>();
        ModelPlan? basePlan = null;
        foreach ((SyntheticModelKind kind, ModelId id, string description) in s_models)
        {
            if (kind == SyntheticModelKind.RetrainedFinetune && !retrained)
            {
                continue;
            }
            ModelPlan plan = kind switch
            {
                SyntheticModelKind.Base => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.Base, shards: 2, reorder: false, description, null),
                SyntheticModelKind.FullFinetune => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.FullFinetune, shards: 2, reorder: false, description, s_models[0].Id),
                SyntheticModelKind.LoraFinetune => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.LoraFinetune, shards: 2, reorder: false, description, s_models[0].Id),
                SyntheticModelKind.ReshardedFinetune => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.FullFinetune, shards: 3, reorder: true, description, IdOf(SyntheticModelKind.FullFinetune)),
                SyntheticModelKind.VocabExtendedFinetune => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.VocabExtended, shards: 2, reorder: false, description, s_models[0].Id),
                SyntheticModelKind.F16Copy => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.F16, shards: 2, reorder: false, description, s_models[0].Id),
                SyntheticModelKind.ReUpload => new ModelPlan(id, Folder(id),
                    basePlan!.Files.Select(f => (PlannedFile)new CopiedFile(f.Name, f, basePlan.Folder)).ToArray()),
                SyntheticModelKind.Standalone => StandalonePlan(id, Folder(id), seed, size, description),
                SyntheticModelKind.FarFinetune => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.FarFinetune, shards: 2, reorder: false, description, s_models[0].Id),
                SyntheticModelKind.ChainFinetune => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.ChainFinetune, shards: 2, reorder: false, description, IdOf(SyntheticModelKind.FullFinetune)),
                SyntheticModelKind.ChannelScaled => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.ChannelScaled, shards: 2, reorder: false, description, null),
                SyntheticModelKind.RetrainedFinetune => LlamaPlan(id, Folder(id), arch, seed, size, LlamaVariant.Retrained, shards: 2, reorder: false, description, s_models[0].Id),
                _ => throw new InvalidOperationException($"Unknown kind {kind}."),
            };
            basePlan ??= plan;
            plans.Add((kind, plan));
        }
        return plans;
    }

    private static ModelPlan LlamaPlan(
        ModelId id, string folder, LlamaArchitecture arch, int seed, SyntheticSize size, LlamaVariant variant,
        int shards, bool reorder, string description, ModelId? baseModel)
    {
        int vocab = variant == LlamaVariant.VocabExtended ? arch.Vocab + arch.ExtraVocab : arch.Vocab;
        var tensors = arch.Tensors(vocab)
            .Select(t =>
            {
                var fill = new LlamaFill(seed, t, variant);
                return new PlannedTensor(t.Name, fill.DType, t.Shape, fill);
            })
            .ToList();
        if (reorder)
        {
            tensors.Reverse();
        }

        // Shards are filled in module order up to an equal share of the bytes, as transformers'
        // save_pretrained does; inside a shard the data is sorted by name, as the safetensors
        // writer does. The re-sharded copy takes modules in reverse and sorts names descending.
        long total = tensors.Sum(t => t.DType.ByteCount(t.ElementCount));
        var groups = new List<List<PlannedTensor>> { new() };
        long running = 0;
        foreach (PlannedTensor t in tensors)
        {
            if (groups.Count < shards && running >= total * groups.Count / shards && groups[^1].Count > 0)
            {
                groups.Add([]);
            }
            groups[^1].Add(t);
            running += t.DType.ByteCount(t.ElementCount);
        }
        if (groups.Count != shards)
        {
            throw new InvalidOperationException($"{id}: planned {groups.Count} shards instead of {shards}.");
        }

        var files = new List<PlannedFile>();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int s = 0; s < groups.Count; s++)
        {
            string name = $"model-{s + 1:D5}-of-{groups.Count:D5}.safetensors";
            var ordered = reorder
                ? groups[s].OrderByDescending(t => t.Name, StringComparer.Ordinal).ToList()
                : groups[s].OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
            files.Add(ShardFile.Create(name, ordered, s_shardMetadata));
            foreach (PlannedTensor t in ordered)
            {
                weightMap[t.Name] = name;
            }
        }
        files.Add(new SmallFile("model.safetensors.index.json", Json(w =>
        {
            w.WriteStartObject("metadata");
            w.WriteNumber("total_size", total);
            w.WriteEndObject();
            w.WriteStartObject("weight_map");
            foreach (KeyValuePair<string, string> pair in weightMap)
            {
                w.WriteString(pair.Key, pair.Value);
            }
            w.WriteEndObject();
        })));
        string dtype = variant == LlamaVariant.F16 ? "float16" : "bfloat16";
        files.Add(new SmallFile("config.json", LlamaConfigJson(arch, vocab, dtype)));
        files.Add(new SmallFile("generation_config.json", Json(w =>
        {
            w.WriteBoolean("_from_model_config", true);
            w.WriteNumber("bos_token_id", 1);
            w.WriteNumber("eos_token_id", 2);
            w.WriteString("transformers_version", TransformersVersion);
        })));
        files.Add(new SmallFile("tokenizer.json", TokenizerJson(arch.Vocab, vocab - arch.Vocab)));
        files.Add(new SmallFile("tokenizer_config.json", Json(w =>
        {
            w.WriteBoolean("add_bos_token", true);
            w.WriteBoolean("add_eos_token", false);
            w.WriteString("bos_token", "<s>");
            w.WriteBoolean("clean_up_tokenization_spaces", false);
            w.WriteString("eos_token", "</s>");
            w.WriteNumber("model_max_length", 2048);
            w.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
            w.WriteString("unk_token", "<unk>");
        })));
        files.Add(new SmallFile("README.md", ModelCard(id, description, baseModel, size, seed)));
        return new ModelPlan(id, folder, files);
    }

    private static ModelPlan StandalonePlan(ModelId id, string folder, int seed, SyntheticSize size, string description)
    {
        (int rows, int columns) = size switch
        {
            SyntheticSize.Tiny => (17, 31),
            SyntheticSize.Small => (129, 257),
            _ => (257, 1023),
        };
        // Awkward on purpose: odd byte lengths, an empty tensor, a scalar, BOOL, and data not in name order.
        (string Name, DType DType, long[] Shape)[] layout =
        [
            ("dense.weight", DType.F32, [rows, columns]),
            ("dense.bias", DType.F32, [rows]),
            ("embedding.weight", DType.F32, [11, 13]),
            ("token_type_ids", DType.U8, [7]),
            ("quant.zero_points", DType.I8, [3]),
            ("attention_mask", DType.BOOL, [5]),
            ("empty.weight", DType.F32, [0, 4]),
            ("logit_scale", DType.F32, []),
            ("half.bias", DType.F16, [3]),
            ("bf16.odd", DType.BF16, [5]),
            ("double.weight", DType.F64, [3]),
            ("position_ids", DType.I64, [2]),
        ];
        var tensors = new List<PlannedTensor>();
        foreach ((string name, DType dtype, long[] shape) in layout)
        {
            long count = shape.Aggregate(1L, (a, b) => a * b);
            var rng = new Xoshiro256(Xoshiro256.Key((uint)seed, XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(name)), 9, 0));
            int elementSize = dtype.BitSize() / 8;
            var bytes = new byte[count * elementSize];
            for (int i = 0; i < count; i++)
            {
                Span<byte> slot = bytes.AsSpan(i * elementSize, elementSize);
                switch (dtype)
                {
                    case DType.F32:
                        BitConverter.TryWriteBytes(slot, 0.05f * rng.NextNormal());
                        break;
                    case DType.F64:
                        BitConverter.TryWriteBytes(slot, 0.05 * rng.NextNormal());
                        break;
                    case DType.F16:
                        BitConverter.TryWriteBytes(slot, FloatBits.ToF16(0.05f * rng.NextNormal()));
                        break;
                    case DType.BF16:
                        BitConverter.TryWriteBytes(slot, FloatBits.ToBf16(0.05f * rng.NextNormal()));
                        break;
                    case DType.BOOL:
                        slot[0] = (byte)(rng.Next() & 1);
                        break;
                    case DType.I64:
                        BitConverter.TryWriteBytes(slot, (long)(rng.Next() % 4096));
                        break;
                    default:
                        slot[0] = (byte)rng.Next();
                        break;
                }
            }
            if (!BitConverter.IsLittleEndian && elementSize > 1)
            {
                for (int i = 0; i < bytes.Length; i += elementSize)
                {
                    bytes.AsSpan(i, elementSize).Reverse();
                }
            }
            tensors.Add(new PlannedTensor(name, dtype, shape, new BytesFill(bytes, elementSize)));
        }
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "synthetic standalone model" };
        PlannedFile[] files =
        [
            ShardFile.Create("model.safetensors", tensors, metadata),
            new SmallFile("config.json", Json(w =>
            {
                w.WriteStartArray("architectures");
                w.WriteStringValue("SyntheticMixedModel");
                w.WriteEndArray();
                w.WriteNumber("hidden_size", columns);
                w.WriteString("model_type", "synthetic-mixed");
                w.WriteString("torch_dtype", "float32");
            })),
            new SmallFile("README.md", ModelCard(id, description, null, size, seed)),
        ];
        return new ModelPlan(id, folder, files);
    }

    private const string TransformersVersion = "4.44.0";

    private static byte[] LlamaConfigJson(LlamaArchitecture arch, int vocab, string dtype) => Json(w =>
    {
        w.WriteStartArray("architectures");
        w.WriteStringValue("LlamaForCausalLM");
        w.WriteEndArray();
        w.WriteBoolean("attention_bias", false);
        w.WriteNumber("bos_token_id", 1);
        w.WriteNumber("eos_token_id", 2);
        w.WriteString("hidden_act", "silu");
        w.WriteNumber("hidden_size", arch.Hidden);
        w.WriteNumber("head_dim", arch.HeadDim);
        w.WritePropertyName("initializer_range");
        w.WriteRawValue("0.02");
        w.WriteNumber("intermediate_size", arch.Intermediate);
        w.WriteNumber("max_position_embeddings", 2048);
        w.WriteString("model_type", "llama");
        w.WriteNumber("num_attention_heads", arch.Heads);
        w.WriteNumber("num_hidden_layers", arch.Layers);
        w.WriteNumber("num_key_value_heads", arch.KvHeads);
        w.WritePropertyName("rms_norm_eps");
        w.WriteRawValue("1e-05");
        w.WritePropertyName("rope_theta");
        w.WriteRawValue("10000.0");
        w.WriteBoolean("tie_word_embeddings", false);
        w.WriteString("torch_dtype", dtype);
        w.WriteString("transformers_version", TransformersVersion);
        w.WriteBoolean("use_cache", true);
        w.WriteNumber("vocab_size", vocab);
    });

    /// <summary>A byte-level BPE tokenizer in the <c>tokenizers</c> JSON layout, with made-up tokens.</summary>
    private static byte[] TokenizerJson(int vocab, int extra) => Json(w =>
    {
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        string[] specials = ["<unk>", "<s>", "</s>"];
        for (int i = 0; i < specials.Length + extra; i++)
        {
            w.WriteStartObject();
            w.WriteNumber("id", i < specials.Length ? i : vocab + i - specials.Length);
            w.WriteString("content", i < specials.Length ? specials[i] : $"<extra_{i - specials.Length}>");
            w.WriteBoolean("single_word", false);
            w.WriteBoolean("lstrip", false);
            w.WriteBoolean("rstrip", false);
            w.WriteBoolean("normalized", false);
            w.WriteBoolean("special", true);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNull("normalizer");
        w.WriteStartObject("pre_tokenizer");
        w.WriteString("type", "ByteLevel");
        w.WriteBoolean("add_prefix_space", false);
        w.WriteBoolean("trim_offsets", true);
        w.WriteBoolean("use_regex", true);
        w.WriteEndObject();
        w.WriteNull("post_processor");
        w.WriteStartObject("decoder");
        w.WriteString("type", "ByteLevel");
        w.WriteEndObject();
        w.WriteStartObject("model");
        w.WriteString("type", "BPE");
        w.WriteNull("dropout");
        w.WriteString("unk_token", "<unk>");
        w.WriteBoolean("fuse_unk", false);
        w.WriteBoolean("byte_fallback", true);
        w.WriteStartObject("vocab");
        for (int i = 0; i < vocab; i++)
        {
            string token = i < specials.Length ? specials[i]
                : i < specials.Length + 256 ? $"<0x{i - specials.Length:X2}>"
                : $"\u2581tok{i}";
            w.WriteNumber(token, i);
        }
        w.WriteEndObject();
        w.WriteStartArray("merges");
        w.WriteEndArray();
        w.WriteEndObject();
    });

    private static byte[] ModelCard(ModelId id, string description, ModelId? baseModel, SyntheticSize size, int seed)
    {
        var card = new StringBuilder();
        card.Append("---\n");
        card.Append("license: apache-2.0\n");
        card.Append("library_name: transformers\n");
        if (baseModel is { } baseId)
        {
            card.Append("base_model: ").Append(baseId.ToString()).Append('\n');
        }
        card.Append("tags:\n- synthetic\n- zipllm-test\n");
        card.Append("---\n\n");
        card.Append("# ").Append(id.ToString()).Append("\n\n");
        card.Append(description).Append("\n\n");
        card.Append("Generated by ZipLLM (`zipllm models setup --synthetic`), size preset `")
            .Append(size.Name()).Append("`, seed ").Append(seed).Append(".\n");
        card.Append("The weights are random, not trained: this model exists to test storage, not to run.\n");
        return Encoding.UTF8.GetBytes(card.ToString());
    }

    private static byte[] Json(Action<Utf8JsonWriter> body)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }
        buffer.WriteByte((byte)'\n');
        return buffer.ToArray();
    }
}
