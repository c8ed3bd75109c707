using System.Text.Json;
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
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        MaxDepth = 16,
    };

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
            var value = JsonSerializer.Deserialize<T>(buffer.GetBuffer().AsSpan(0, (int)buffer.Length), Options);
            return value is null
                ? new(null, Problems.Validation("$", "The body must be a JSON object."))
                : new(value, null);
        }
        catch (JsonException e)
        {
            // The message names the JSON path; it echoes no value of the body.
            var path = string.IsNullOrEmpty(e.Path) ? "$" : e.Path;
            return new(null, Problems.Validation(path, Describe(e)));
        }
    }

    private static string Describe(JsonException e) =>
        e.Message.Contains("could not be mapped", StringComparison.Ordinal) ? "This field is not known."
        : e.Message.Contains("could not be converted", StringComparison.Ordinal) ? "This field has the wrong type."
        : "The body is not valid JSON.";

    private static IResult TooLarge() => Problems.Status(StatusCodes.Status413PayloadTooLarge, "body_too_large",
        $"The body is larger than {MaxBytes} bytes.");
}
