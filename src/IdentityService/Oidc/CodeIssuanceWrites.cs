using OpenIddict.Server;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace IdentityService.Oidc;

/// <summary>
/// Issuing a code writes its sign-in's authorization and the code's row, then the code's payload: OpenIddict
/// saves each on its own, three transactions (three commits, each a disk flush on SQLite). While the
/// authorization endpoint signs a person in, the token and authorization stores only add the new rows, and they
/// go to the database together: with the code's payload when OpenIddict writes it, or at the end of the sign-in.
/// If the sign-in fails in between, nothing is written, as no code was given.
/// </summary>
internal static class CodeIssuanceWritesSetup
{
    public static OpenIddictServerBuilder AddCodeIssuanceWrites(this OpenIddictServerBuilder builder) => builder
        .AddEventHandler(CodeIssuanceWrites.Begin.Descriptor)
        .AddEventHandler(CodeIssuanceWrites.End.Descriptor);
}

/// <inheritdoc cref="CodeIssuanceWritesSetup"/>
internal sealed class CodeIssuanceWrites
{
    /// <summary>Read by <see cref="TenantTokenStore"/> and <see cref="TenantAuthorizationStore"/>: add new rows, do not save them yet.</summary>
    public bool Deferred { get; set; }

    internal sealed class Begin : IOpenIddictServerHandler<ProcessSignInContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
                .UseSingletonHandler<Begin>()
                .SetOrder(OpenIddictServerHandlers.ValidateSignInDemand.Descriptor.Order - 1)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public ValueTask HandleAsync(ProcessSignInContext context)
        {
            if (context.EndpointType is OpenIddictServerEndpointType.Authorization)
            {
                Writes(context).Deferred = true;
            }

            return ValueTask.CompletedTask;
        }
    }

    /// <summary>The last handler of a sign-in: whatever is still added and unsaved goes now.</summary>
    internal sealed class End : IOpenIddictServerHandler<ProcessSignInContext>
    {
        public static OpenIddictServerHandlerDescriptor Descriptor { get; } =
            OpenIddictServerHandlerDescriptor.CreateBuilder<ProcessSignInContext>()
                .UseSingletonHandler<End>()
                .SetOrder(int.MaxValue)
                .SetType(OpenIddictServerHandlerType.Custom)
                .Build();

        public async ValueTask HandleAsync(ProcessSignInContext context)
        {
            var writes = Writes(context);
            if (!writes.Deferred)
            {
                return;
            }

            writes.Deferred = false;
            var db = context.Transaction.RequestServices().GetRequiredService<Data.IdentityDb>();
            if (db.ChangeTracker.HasChanges())
            {
                await db.SaveChangesAsync(context.CancellationToken);
            }
        }
    }

    private static CodeIssuanceWrites Writes(BaseContext context) =>
        context.Transaction.RequestServices().GetRequiredService<CodeIssuanceWrites>();
}
