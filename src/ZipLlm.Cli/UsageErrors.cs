using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace ZipLlm.Cli;

/// <summary>
/// A malformed command line as one line a person reads, then where to look: <c>zipllm: MESSAGE</c> and
/// <c>see 'zipllm VERB --help'</c>, instead of System.CommandLine's every error and the whole help text. Its
/// messages name .NET types ("as expected type 'System.Nullable`1[System.Int32]'"); these never reach the user.
/// </summary>
internal static partial class UsageErrors
{
    /// <summary>How a usage error about the order of the arguments starts.</summary>
    public const string WrongOrder = "arguments in the wrong order";

    /// <summary>Writes the first error of <paramref name="parseResult"/> and the help pointer to <paramref name="error"/>.</summary>
    public static void Write(ParseResult parseResult, TextWriter error)
    {
        error.WriteLine("zipllm: " + Describe(parseResult));
        error.WriteLine($"see '{HelpCommand(parseResult.CommandResult)}'");
    }

    /// <summary>The first error, in words: what is wrong and with which argument or option.</summary>
    public static string Describe(ParseResult parseResult)
    {
        // The command's verdict on the order of its arguments explains the errors of each argument that follow from
        // it, and an unknown verb the "no verb given" that follows from that.
        ParseError first = parseResult.Errors.FirstOrDefault(e => e.Message.StartsWith(WrongOrder, StringComparison.Ordinal))
            ?? parseResult.Errors.FirstOrDefault(e => Unrecognized().IsMatch(e.Message))
            ?? parseResult.Errors[0];
        string message = first.Message;
        if (parseResult.Errors.Any(e => e.Message.StartsWith("Required argument missing", StringComparison.Ordinal))
            && MissingArguments(parseResult.CommandResult) is { Count: > 0 } missing)
        {
            Command command = parseResult.CommandResult.Command;
            string usage = string.Join(' ', command.Arguments.Where(a => !a.Hidden).Select(ArgumentName));
            return $"{VerbPath(parseResult.CommandResult)} takes {usage}: {string.Join(" and ", missing)} {(missing.Count == 1 ? "is" : "are")} missing";
        }
        if (message.StartsWith("Required command was not provided", StringComparison.Ordinal))
        {
            CommandResult parent = parseResult.CommandResult;
            string verbs = string.Join(", ", parent.Command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
            return parent.Parent is null ? $"give a verb: {verbs}" : $"{VerbPath(parent)} takes a verb: {verbs}";
        }
        if (CannotParse().Match(message) is { Success: true } parse)
        {
            return $"{parse.Groups["name"].Value}: '{parse.Groups["value"].Value}' is not {Describe(parse.Groups["type"].Value)}";
        }
        if (Unrecognized().Match(message) is { Success: true } unrecognized)
        {
            string token = unrecognized.Groups["value"].Value;
            Command command = parseResult.CommandResult.Command;
            if (token.StartsWith('-'))
            {
                return $"unknown option '{token}'";
            }
            if (command.Subcommands.Count > 0 && command.Arguments.Count == 0)
            {
                IReadOnlyList<string> near = Commands.ModelSuggestions.Closest(token, command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name));
                return $"unknown verb '{token}'" + (near.Count > 0 ? $"; did you mean {string.Join(" or ", near)}?" : "");
            }
            return $"unexpected argument '{token}' (too many arguments)";
        }
        if (NotOneOf().Match(message) is { Success: true } choice)
        {
            string name = first.SymbolResult switch
            {
                OptionResult option => option.Option.Name + ": ",
                ArgumentResult { Parent: OptionResult option } => option.Option.Name + ": ",
                ArgumentResult argument => ArgumentName(argument.Argument) + ": ",
                _ => "",
            };
            string allowed = string.Join(", ", Quoted().Matches(choice.Groups["allowed"].Value).Select(m => m.Groups[1].Value));
            return $"{name}'{choice.Groups["value"].Value}' is not one of {allowed}";
        }
        return Scrub(message);
    }

    /// <summary>The help command for the verb parsed so far: "zipllm restore --help", "zipllm models setup --help", "zipllm --help".</summary>
    public static string HelpCommand(CommandResult command) =>
        command.Parent is null ? "zipllm --help" : $"zipllm {VerbPath(command)} --help";

    private static string VerbPath(CommandResult command)
    {
        var names = new List<string>();
        for (SymbolResult? result = command; result is CommandResult { Parent: not null } verb; result = verb.Parent)
        {
            names.Insert(0, verb.Command.Name);
        }
        return string.Join(' ', names);
    }

    private static List<string> MissingArguments(CommandResult command) =>
        command.Command.Arguments
            .Where(a => a.Arity.MinimumNumberOfValues > 0 && command.GetResult(a) is not { Tokens.Count: > 0 })
            .Select(ArgumentName)
            .ToList();

    private static string ArgumentName(Argument argument) => argument.Name.ToUpperInvariant();

    /// <summary>A .NET type name as a person says what the value must be.</summary>
    private static string Describe(string typeName) => typeName switch
    {
        _ when typeName.Contains("System.Int32", StringComparison.Ordinal) || typeName.Contains("System.Int64", StringComparison.Ordinal) => "a whole number",
        _ when typeName.Contains("System.Double", StringComparison.Ordinal) => "a number",
        _ when typeName.Contains("System.Boolean", StringComparison.Ordinal) => "true or false",
        _ => "a valid value",
    };

    /// <summary>The message on one line, without any .NET type name left in it.</summary>
    internal static string Scrub(string message) =>
        TypeName().Replace(message.ReplaceLineEndings(" ").Replace('\t', ' '), "a value").Trim();

    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for (option|command) '(?<name>[^']*)' as expected type '(?<type>[^']*)'", RegexOptions.Singleline)]
    private static partial Regex CannotParse();

    [GeneratedRegex(@"^Unrecognized command or argument '(?<value>.*)'\.$", RegexOptions.Singleline)]
    private static partial Regex Unrecognized();

    [GeneratedRegex(@"^Argument '(?<value>.*)' not recognized\. Must be one of:(?<allowed>.*)$", RegexOptions.Singleline)]
    private static partial Regex NotOneOf();

    [GeneratedRegex(@"'([^']*)'")]
    private static partial Regex Quoted();

    [GeneratedRegex(@"'?(System|Microsoft)\.[\w.`\[\],]+'?")]
    private static partial Regex TypeName();
}
