using System.Text.Json;
using System.Text.Json.Serialization;

namespace IdentityService.Policy;

/// <summary>
/// Reads a policy's strings as the literal of the same value where the process has one (<see cref="string.IsInterned"/>):
/// the policy's own words (<c>off</c>, <c>totp</c>, <c>allow</c>, <c>deny</c>, <c>plain</c> ...) are literals of this
/// service, so 10,000 tenants' cached policies share one copy of each instead of keeping 10,000. It never interns what
/// it reads: a value without a literal (a site key, a secret, an address range) is kept as read, and nothing a tenant
/// sends grows the runtime's pool.
/// </summary>
internal sealed class LiteralStrings : JsonConverter<string>
{
    /// <summary>The literal equal to <paramref name="value"/> where the process has one; else <paramref name="value"/> itself.</summary>
    internal static string Of(string value) => string.IsInterned(value) ?? value;

    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        reader.GetString() is { } value ? Of(value) : null;

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);
}
