using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace IdentityService.Management;

/// <summary>
/// Reads a management request body: JSON only, at most <see cref="MaxBytes"/> (413 past it), unknown
/// fields refused, and any malformed, truncated or wrongly typed body a 400 that says where it broke.
/// </summary>
public static class JsonBody
{
    public const int MaxBytes = 64 * 1024;

    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        // A field given twice is ambiguous (which one did the caller mean?): refused, for objects and documents alike.
        AllowDuplicateProperties = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = 16,
    };

    /// <summary>
    /// The same rules for a body kept as a JSON document (a policy), read by the document parser: the serializer's
    /// reading of a JSON object threw a plain <see cref="ArgumentException"/> on a duplicate field.
    /// </summary>
    private static readonly JsonDocumentOptions DocumentOptions = new() { MaxDepth = 16, AllowDuplicateProperties = false };

    private const string NotUnicode = "This field is not valid Unicode text (an unpaired surrogate).";

    public readonly record struct Result<T>(T? Value, IResult? Error);

    public static async Task<Result<T>> ReadAsync<T>(HttpRequest request, params string[] mediaTypes)
        where T : class
    {
        var accepted = mediaTypes.Length == 0 ? ["application/json"] : mediaTypes;
        var contentType = request.ContentType?.Split(';')[0].Trim();
        if (contentType is null || !accepted.Contains(contentType, StringComparer.OrdinalIgnoreCase))
        {
            return new(null, Problems.Status(StatusCodes.Status415UnsupportedMediaType, "unsupported_media_type",
                $"The body must be {string.Join(" or ", accepted)}."));
        }

        if (request.ContentLength > MaxBytes)
        {
            return new(null, TooLarge());
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[8192];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, request.HttpContext.RequestAborted)) > 0)
        {
            buffer.Write(chunk, 0, read);
            if (buffer.Length > MaxBytes)
            {
                return new(null, TooLarge());
            }
        }

        try
        {
            var json = buffer.GetBuffer().AsSpan(0, (int)buffer.Length);
            var value = typeof(JsonNode).IsAssignableFrom(typeof(T))
                ? JsonNode.Parse(json, documentOptions: DocumentOptions) as T
                : JsonSerializer.Deserialize<T>(json, Options);
            if (value is null)
            {
                return new(null, Problems.Validation("$", "The body must be a JSON object."));
            }

            // A document kept as JSON (a policy) is read for its text only later: check it now, as binding checks a field.
            return value is JsonNode node && InvalidTextAt(node, "$") is { } path
                ? new(null, Problems.Validation(path, NotUnicode))
                : new(value, null);
        }
        catch (InvalidOperationException) when (typeof(JsonNode).IsAssignableFrom(typeof(T)))
        {
            // The document parser, checking names for duplicates, met a name that is not valid Unicode text.
            return new(null, Problems.Validation("$", NotUnicode));
        }
        catch (JsonException e)
        {
            // The message names the JSON path; it echoes no value of the body.
            var path = string.IsNullOrEmpty(e.Path) ? "$" : e.Path;
            return new(null, Problems.Validation(path, Describe(e)));
        }
    }

    /// <summary>
    /// The path of the first name or string in <paramref name="node"/> that is not well-formed Unicode text (an
    /// unpaired surrogate, which the document parser leaves to be found when the text is read), or null.
    /// </summary>
    private static string? InvalidTextAt(JsonNode? node, string path)
    {
        try
        {
            switch (node)
            {
                case JsonObject members:
                    foreach (var (name, member) in members)
                    {
                        if (!IsWellFormed(name))
                        {
                            return path;
                        }

                        if (InvalidTextAt(member, $"{path}.{name}") is { } found)
                        {
                            return found;
                        }
                    }

                    return null;
                case JsonArray items:
                    for (var i = 0; i < items.Count; i++)
                    {
                        if (InvalidTextAt(items[i], $"{path}[{i}]") is { } found)
                        {
                            return found;
                        }
                    }

                    return null;
                case JsonValue value when value.GetValueKind() == JsonValueKind.String:
                    return IsWellFormed(value.GetValue<string>()) ? null : path;
                default:
                    return null;
            }
        }
        catch (InvalidOperationException)
        {
            return path;
        }
    }

    private static bool IsWellFormed(string text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return false;
            }
        }

        return true;
    }

    private static string Describe(JsonException e) =>
        e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? "This field is not known."
        : e.Message.Contains("uplicate", StringComparison.Ordinal) ? "A field is given more than once."
        : e.InnerException is InvalidOperationException ? NotUnicode
        : e.Message.Contains("could not be converted", StringComparison.Ordinal) ? "This field has the wrong type."
        : "The body is not valid JSON.";

    private static IResult TooLarge() => Problems.Status(StatusCodes.Status413PayloadTooLarge, "body_too_large",
        $"The body is larger than {MaxBytes} bytes.");
}
