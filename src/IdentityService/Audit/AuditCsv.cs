using System.Text;
using System.Text.Json.Nodes;

namespace IdentityService.Audit;

/// <summary>
/// The audit log as CSV (RFC 4180): one entry a line, <c>details</c> as its JSON. A field a spreadsheet would read
/// as a formula (one starting with <c>=</c>, <c>+</c>, <c>-</c>, <c>@</c>, a tab or a carriage return: a typed
/// identifier or a user agent can be anything) is written with a leading <c>'</c>, as OWASP advises.
/// </summary>
internal static class AuditCsv
{
    private static readonly string[] Columns = ["id", "time", "type", "outcome", "ip", "userId", "clientId", "actor", "details"];

    public static readonly string Header = string.Join(',', Columns) + "\r\n";

    public static string Line(JsonObject view, System.Text.Json.JsonSerializerOptions json)
    {
        var line = new StringBuilder();
        for (var i = 0; i < Columns.Length; i++)
        {
            if (i > 0)
            {
                line.Append(',');
            }

            var value = view[Columns[i]] switch
            {
                null => "",
                JsonValue text when text.TryGetValue<string>(out var s) => s,
                var node => node.ToJsonString(json),
            };
            Append(line, value);
        }

        return line.Append("\r\n").ToString();
    }

    private static void Append(StringBuilder line, string value)
    {
        if (value.Length > 0 && value[0] is '=' or '+' or '-' or '@' or '\t' or '\r')
        {
            value = "'" + value;
        }

        if (value.AsSpan().IndexOfAny(",\"\r\n") < 0)
        {
            line.Append(value);
            return;
        }

        line.Append('"').Append(value.Replace("\"", "\"\"", StringComparison.Ordinal)).Append('"');
    }
}
