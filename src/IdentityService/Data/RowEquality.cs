using Microsoft.EntityFrameworkCore.Metadata;

namespace IdentityService.Data;

/// <summary>
/// Tells whether two rows of one entity, loaded without tracking, hold the same values: every mapped property is
/// compared with EF Core's own value comparer for it (so a primitive collection compares its elements). A cache
/// that reads a row again uses it to keep the instance it has when nothing changed.
/// </summary>
internal static class RowEquality
{
    public static bool Same<T>(IModel model, T cached, T loaded) where T : class
    {
        var type = model.FindEntityType(typeof(T)) ?? throw new InvalidOperationException($"{typeof(T).Name} is not an entity of the model.");
        foreach (var property in type.GetProperties())
        {
            if (property.IsShadowProperty())
            {
                // Not on the instance; an entity cached this way has none (a test of this class says so).
                return false;
            }

            var getter = property.GetGetter();
            if (!property.GetValueComparer().Equals(getter.GetClrValue(cached), getter.GetClrValue(loaded)))
            {
                return false;
            }
        }

        return true;
    }
}
