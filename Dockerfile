# Build: the SDK image; the build fixes libLibTorchSharp.so only if that host's libstdc++ lacks GLIBCXX_3.4.32.
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/DlsganOod.Cli -c Release -o /app

# Runtime: Ubuntu 24.04 (noble) ships libstdc++ from GCC 14, which provides GLIBCXX_3.4.32 natively.
FROM mcr.microsoft.com/dotnet/aspnet:10.0-noble AS runtime
WORKDIR /app
COPY --from=build /app .
COPY deploy/samples /samples
ENV DLSGANOOD_Metrics__Port=9464 \
    DOTNET_gcServer=0
EXPOSE 9464
USER app
ENTRYPOINT ["dotnet", "/app/dlsgan-ood.dll"]
CMD ["worker"]
