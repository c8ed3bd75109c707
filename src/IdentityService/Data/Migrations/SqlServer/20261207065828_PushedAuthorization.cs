using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace IdentityService.Data.Migrations.SqlServer
{
    /// <inheritdoc />
    public partial class PushedAuthorization : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            // Every client with the authorization endpoint may push its requests (RFC 9126), as ClientSettings now grants
            // to new ones: clients such as ASP.NET Core's OpenID Connect handler push whenever discovery names the endpoint.
            migrationBuilder.Sql("""
                UPDATE [OpenIddictApplications] SET [Permissions] = REPLACE([Permissions], '"ept:authorization"', '"ept:authorization","ept:pushed_authorization"')
                WHERE [Permissions] LIKE '%"ept:authorization"%' AND [Permissions] NOT LIKE '%"ept:pushed_authorization"%'
                """);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.Sql("""
                UPDATE [OpenIddictApplications] SET [Permissions] = REPLACE([Permissions], ',"ept:pushed_authorization"', '')
                WHERE [Permissions] LIKE '%,"ept:pushed_authorization"%'
                """);
        }
    }
}
