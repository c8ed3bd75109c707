using System.Text.RegularExpressions;

namespace IdentityService.Users;

/// <summary>
/// The profile fields of an account (name, given and family name, locale: the OpenID Connect <c>profile</c>
/// claims), with the same rules whether an admin sets them through the API or the person on their profile page.
/// A null value leaves a field as it is; an empty one clears it.
/// </summary>
public static partial class ProfileFields
{
    /// <summary>Each field's key (as the API names it) and its name on a page.</summary>
    public static readonly IReadOnlyDictionary<string, string> Labels = new Dictionary<string, string>
    {
        ["name"] = "Full name",
        ["givenName"] = "Given name",
        ["familyName"] = "Family name",
        ["locale"] = "Language",
    };

    /// <summary>Sets the fields given; each error is under the field's key, worded with <paramref name="label"/> (the key when null).</summary>
    public static void Apply(
        AppUser user, string? name, string? givenName, string? familyName, string? locale, Dictionary<string, string[]> errors, Func<string, string>? label = null)
    {
        label ??= key => key;
        user.Name = Text(name, user.Name, 200, "name", label, errors);
        user.GivenName = Text(givenName, user.GivenName, 100, "givenName", label, errors);
        user.FamilyName = Text(familyName, user.FamilyName, 100, "familyName", label, errors);
        if (locale is not null)
        {
            if (locale.Length > 0 && (locale.Length > 35 || !LocaleShape().IsMatch(locale)))
            {
                errors["locale"] = [$"{label("locale")} must be a BCP 47 language tag, for example fr-FR."];
            }

            user.Locale = locale.Length == 0 ? null : locale;
        }
    }

    private static string? Text(string? value, string? current, int max, string key, Func<string, string> label, Dictionary<string, string[]> errors)
    {
        if (value is null)
        {
            return current;
        }

        if (value.Length > max)
        {
            errors[key] = [$"{label(key)} must be at most {max} characters."];
        }
        else if (value.Any(char.IsControl))
        {
            errors[key] = [$"{label(key)} must not hold a control character (a tab, a line break)."];
        }

        return value.Length == 0 ? null : value;
    }

    [GeneratedRegex(@"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$")]
    private static partial Regex LocaleShape();
}
