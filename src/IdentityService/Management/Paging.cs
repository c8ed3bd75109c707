using System.Text;

namespace IdentityService.Management;

/// <summary>Keyset paging: <c>?limit=&amp;cursor=</c> in, <c>{"items": [...], "next": cursor-or-null}</c> out.</summary>
public static class Paging
{
    public const int DefaultLimit = 50;
    public const int MaxLimit = 200;

    public sealed record Page<T>(IReadOnlyList<T> Items, string? Next);

    /// <summary>Reads the paging parameters; an error names the bad one.</summary>
    public static (int Limit, string? After, IResult? Error) Read(HttpRequest request)
    {
        var limit = DefaultLimit;
        if (request.Query.TryGetValue("limit", out var rawLimit)
            && (!int.TryParse(rawLimit, out limit) || limit < 1 || limit > MaxLimit))
        {
            return (0, null, Problems.Validation("limit", $"limit must be a whole number from 1 to {MaxLimit}."));
        }

        string? after = null;
        if (request.Query.TryGetValue("cursor", out var rawCursor) && !string.IsNullOrEmpty(rawCursor))
        {
            try
            {
                after = Encoding.UTF8.GetString(Convert.FromBase64String(rawCursor.ToString()));
            }
            catch (FormatException)
            {
                return (0, null, Problems.Validation("cursor", "cursor is not one this API gave."));
            }
        }

        return (limit, after, null);
    }

    /// <summary>Builds a page from up to limit + 1 rows fetched in key order.</summary>
    public static Page<TOut> Create<TIn, TOut>(List<TIn> rows, int limit, Func<TIn, string> key, Func<TIn, TOut> map)
    {
        var next = rows.Count > limit ? Convert.ToBase64String(Encoding.UTF8.GetBytes(key(rows[limit - 1]))) : null;
        return new Page<TOut>(rows.Take(limit).Select(map).ToList(), next);
    }
}
